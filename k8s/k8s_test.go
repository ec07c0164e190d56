package k8s

import (
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"

	"github.com/stratus-registry/stratus/deploy/deploytest"
)

// The registry Deployment and what the tests expect of it.
const (
	registry     = "stratus"
	configKey    = "stratus.yaml"
	httpPort     = 5000 // the default http.addr, which no manifest overrides
	wantReplicas = 3
)

// stratusConfig is the part of the rendered configuration file the
// invariants look at; `stratus config check` validates all of it.
type stratusConfig struct {
	Storage struct {
		Driver     string `yaml:"driver"`
		Filesystem struct {
			Root string `yaml:"root"`
		} `yaml:"filesystem"`
	} `yaml:"storage"`
	Redis struct {
		Addrs []string `yaml:"addrs"`
	} `yaml:"redis"`
}

var (
	roleARN    = regexp.MustCompile(`^arn:aws:iam::[0-9]{12}:role/.+$`)
	gcpSA      = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9-]+\.iam\.gserviceaccount\.com$`)
	azureGUIDs = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

func TestOverlays(t *testing.T) {
	bin := deploytest.BuildLikeDockerfile(t, "test")
	for _, tc := range []struct {
		dir    string
		driver string
		// inClusterRedis: the dev overlay runs its own; production
		// overlays point at a managed one.
		inClusterRedis bool
		identity       func(t *testing.T, m *manifests)
	}{
		{dir: "base", driver: "filesystem"},
		{dir: "overlays/s3", driver: "s3", identity: func(t *testing.T, m *manifests) {
			sa := get[corev1.ServiceAccount](t, m, "ServiceAccount", registry)
			if a := sa.Annotations["eks.amazonaws.com/role-arn"]; !roleARN.MatchString(a) {
				t.Errorf("ServiceAccount eks.amazonaws.com/role-arn = %q, want an IAM role ARN", a)
			}
		}},
		{dir: "overlays/gcs", driver: "gcs", identity: func(t *testing.T, m *manifests) {
			sa := get[corev1.ServiceAccount](t, m, "ServiceAccount", registry)
			if a := sa.Annotations["iam.gke.io/gcp-service-account"]; !gcpSA.MatchString(a) {
				t.Errorf("ServiceAccount iam.gke.io/gcp-service-account = %q, want a service account email", a)
			}
		}},
		{dir: "overlays/azure", driver: "azure", identity: func(t *testing.T, m *manifests) {
			sa := get[corev1.ServiceAccount](t, m, "ServiceAccount", registry)
			if a := sa.Annotations["azure.workload.identity/client-id"]; !azureGUIDs.MatchString(a) {
				t.Errorf("ServiceAccount azure.workload.identity/client-id = %q, want a client id", a)
			}
			d := get[appsv1.Deployment](t, m, "Deployment", registry)
			if l := d.Spec.Template.Labels["azure.workload.identity/use"]; l != "true" {
				t.Errorf("pod label azure.workload.identity/use = %q, want \"true\" (the webhook ignores other pods)", l)
			}
		}},
		{dir: "overlays/dev", driver: "filesystem", inClusterRedis: true},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			m := build(t, tc.dir)
			d := get[appsv1.Deployment](t, m, "Deployment", registry)
			checkDeployment(t, d)
			for _, dep := range all[appsv1.Deployment](m) {
				checkPodSecurity(t, dep)
			}
			checkDisruption(t, m, d)
			checkNetwork(t, m, d)
			cfg := checkConfig(t, bin, m, d, tc.driver)
			checkRedis(t, m, cfg, tc.inClusterRedis)
			if tc.driver == "filesystem" && tc.dir != "base" {
				checkFilesystemVolume(t, m, d, cfg.Storage.Filesystem.Root)
			}
			if tc.identity != nil {
				tc.identity(t, m)
			}
		})
	}
}

// checkDeployment: replicas, rollout, spread, probes, shutdown, resources.
func checkDeployment(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != wantReplicas {
		t.Errorf("replicas = %v, want %d", d.Spec.Replicas, wantReplicas)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy = %+v, want RollingUpdate with maxUnavailable 0", d.Spec.Strategy)
	}
	pod := d.Spec.Template
	keys := map[string]bool{}
	for _, c := range pod.Spec.TopologySpreadConstraints {
		keys[c.TopologyKey] = true
		if !selects(c.LabelSelector, pod.Labels) {
			t.Errorf("topology spread on %s: selector %v does not select the pods", c.TopologyKey, c.LabelSelector)
		}
	}
	for _, k := range []string{"topology.kubernetes.io/zone", "kubernetes.io/hostname"} {
		if !keys[k] {
			t.Errorf("no topologySpreadConstraint on %s", k)
		}
	}
	c := container(t, d, registry)
	if got := portNumber(c, "http"); got != httpPort {
		t.Errorf("container port http = %d, want %d (http.addr)", got, httpPort)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"readiness", c.ReadinessProbe, "/readyz"},
		{"liveness", c.LivenessProbe, "/healthz"},
		{"startup", c.StartupProbe, "/healthz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP GET of %s", p.name, p.path)
			continue
		}
		if got := p.probe.HTTPGet.Path; got != p.path {
			t.Errorf("%s probe path = %q, want %q", p.name, got, p.path)
		}
		if got := resolvePort(c, p.probe.HTTPGet.Port); got != httpPort {
			t.Errorf("%s probe port = %s (%d), want %d", p.name, p.probe.HTTPGet.Port.String(), got, httpPort)
		}
	}
	checkShutdown(t, d, c)
	checkResources(t, d.Name, c)
	env := literalEnv(c)
	_, metricsPort, err := net.SplitHostPort(env["STRATUS_METRICS_ADDR"])
	if err != nil || metricsPort != strconv.Itoa(int(portNumber(c, "metrics"))) {
		t.Errorf("STRATUS_METRICS_ADDR = %q, container port metrics = %d: they must agree", env["STRATUS_METRICS_ADDR"], portNumber(c, "metrics"))
	}
}

// checkShutdown: the grace period covers the preStop sleep, the time
// /readyz fails before the listener closes and the drain of in-flight
// requests, so the kubelet never kills a replica that is still draining.
func checkShutdown(t *testing.T, d *appsv1.Deployment, c *corev1.Container) {
	t.Helper()
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("no preStop sleep (the image has no shell for an exec hook)")
	}
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	env := literalEnv(c)
	var drain time.Duration
	for _, name := range []string{"STRATUS_HTTP_SHUTDOWN_DELAY", "STRATUS_HTTP_SHUTDOWN_TIMEOUT"} {
		v, err := time.ParseDuration(env[name])
		if err != nil {
			t.Fatalf("%s = %q: set it in the Deployment, next to the grace period (%v)", name, env[name], err)
		}
		drain += v
	}
	grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil {
		t.Fatal("terminationGracePeriodSeconds unset")
	}
	if need := preStop + drain; time.Duration(*grace)*time.Second < need {
		t.Errorf("terminationGracePeriodSeconds = %d, want at least preStop + shutdown_delay + shutdown_timeout = %s", *grace, need)
	}
}

func checkResources(t *testing.T, owner string, c *corev1.Container) {
	t.Helper()
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
			t.Errorf("%s/%s: no %s request", owner, c.Name, r)
		}
		if q, ok := c.Resources.Limits[r]; !ok || q.IsZero() {
			t.Errorf("%s/%s: no %s limit", owner, c.Name, r)
		}
	}
	req, lim := c.Resources.Requests[corev1.ResourceMemory], c.Resources.Limits[corev1.ResourceMemory]
	if lim.Cmp(req) < 0 {
		t.Errorf("%s/%s: memory limit %s below request %s", owner, c.Name, lim.String(), req.String())
	}
}

// checkPodSecurity: every pod runs as non-root, with a read-only root
// file system, no capabilities and the runtime's seccomp profile (the
// "restricted" Pod Security Standard the namespace enforces).
func checkPodSecurity(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	ps := d.Spec.Template.Spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot not true", d.Name)
	}
	if ps != nil && ps.RunAsUser != nil && *ps.RunAsUser == 0 {
		t.Errorf("%s: pod runs as uid 0", d.Name)
	}
	podSeccomp := ps != nil && ps.SeccompProfile != nil && ps.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
	for _, c := range d.Spec.Template.Spec.Containers {
		checkResources(t, d.Name, &c)
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s/%s: no securityContext", d.Name, c.Name)
			continue
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s/%s: readOnlyRootFilesystem not true", d.Name, c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s/%s: allowPrivilegeEscalation not false", d.Name, c.Name)
		}
		if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s/%s: capabilities = %+v, want drop [ALL] and nothing added", d.Name, c.Name, sc.Capabilities)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			t.Errorf("%s/%s: runs as uid 0", d.Name, c.Name)
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s/%s: seccomp %s, want RuntimeDefault", d.Name, c.Name, sc.SeccompProfile.Type)
		} else if sc.SeccompProfile == nil && !podSeccomp {
			t.Errorf("%s/%s: no RuntimeDefault seccomp profile", d.Name, c.Name)
		}
	}
}

// checkDisruption: the PDB and the HPA keep at least two of three replicas.
func checkDisruption(t *testing.T, m *manifests, d *appsv1.Deployment) {
	t.Helper()
	pdb := get[policyv1.PodDisruptionBudget](t, m, "PodDisruptionBudget", registry)
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 || pdb.Spec.MinAvailable.Type != intstr.Int {
		t.Errorf("PodDisruptionBudget minAvailable = %v, want 2", pdb.Spec.MinAvailable)
	}
	if !selects(pdb.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("PodDisruptionBudget selector %v does not select the registry pods", pdb.Spec.Selector)
	}
	hpa := get[autoscalingv2.HorizontalPodAutoscaler](t, m, "HorizontalPodAutoscaler", registry)
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != d.Name {
		t.Errorf("HPA scales %s/%s, want Deployment/%s", ref.Kind, ref.Name, d.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < wantReplicas || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
		t.Errorf("HPA replicas %v..%d, want at least %d", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas, wantReplicas)
	}
}

// checkNetwork: Service, NetworkPolicy and Ingress reach the pods' API
// port, and the Ingress lifts the body size and timeouts that break pushes.
func checkNetwork(t *testing.T, m *manifests, d *appsv1.Deployment) {
	t.Helper()
	c := container(t, d, registry)
	svc := get[corev1.Service](t, m, "Service", registry)
	if !selects(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, d.Spec.Template.Labels) {
		t.Errorf("Service selector %v does not select the registry pods", svc.Spec.Selector)
	}
	for _, p := range svc.Spec.Ports {
		if got := resolvePort(c, p.TargetPort); got != httpPort {
			t.Errorf("Service port %s targets %d, want %d; /metrics stays off the public Service", p.Name, got, httpPort)
		}
	}
	np := get[networkingv1.NetworkPolicy](t, m, "NetworkPolicy", registry)
	if !selects(&np.Spec.PodSelector, d.Spec.Template.Labels) {
		t.Error("NetworkPolicy does not select the registry pods")
	}
	open := false
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port != nil && resolvePort(c, *p.Port) == httpPort && len(rule.From) == 0 {
				open = true
			}
		}
	}
	if !open {
		t.Error("NetworkPolicy: the API port is not open to clients")
	}
	ing := get[networkingv1.Ingress](t, m, "Ingress", registry)
	for key, want := range map[string]string{
		"nginx.ingress.kubernetes.io/proxy-body-size":         "0",
		"nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
	} {
		if got := ing.Annotations[key]; got != want {
			t.Errorf("Ingress %s = %q, want %q", key, got, want)
		}
	}
	for _, key := range []string{"nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
		if s, err := strconv.Atoi(ing.Annotations[key]); err != nil || s < 600 {
			t.Errorf("Ingress %s = %q, want at least 600 seconds", key, ing.Annotations[key])
		}
	}
	for _, rule := range ing.Spec.Rules {
		for _, p := range rule.HTTP.Paths {
			if b := p.Backend.Service; b == nil || b.Name != svc.Name || b.Port.Name != "http" {
				t.Errorf("Ingress path %s: backend %+v, want Service %s port http", p.Path, p.Backend, svc.Name)
			}
		}
	}
}

// checkConfig finds the configuration file the pods mount, runs it through
// `stratus config check` with the Deployment's environment, and returns it.
func checkConfig(t *testing.T, bin string, m *manifests, d *appsv1.Deployment, driver string) stratusConfig {
	t.Helper()
	c := container(t, d, registry)
	if len(c.Args) != 2 || c.Args[0] != "--config" {
		t.Fatalf("args = %q, want [--config FILE] (the image's entrypoint is `stratus serve`)", c.Args)
	}
	var cmName string
	for _, vm := range c.VolumeMounts {
		if filepath.Join(vm.MountPath, configKey) != c.Args[1] {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				cmName = v.ConfigMap.Name
			}
		}
	}
	if cmName == "" {
		t.Fatalf("%s is not key %s of a mounted ConfigMap", c.Args[1], configKey)
	}
	cm := get[corev1.ConfigMap](t, m, "ConfigMap", cmName)
	data, ok := cm.Data[configKey]
	if !ok {
		t.Fatalf("ConfigMap %s has no %s", cmName, configKey)
	}
	var env []string
	for name, value := range literalEnv(c) {
		env = append(env, name+"="+value)
	}
	if out, ok := deploytest.ConfigCheck(t, bin, []byte(data), env); !ok {
		t.Fatalf("stratus config check rejects the configuration:\n%s\n--- %s\n%s", out, configKey, data)
	}
	var cfg stratusConfig
	if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
		t.Fatal(err)
	}
	if got := cfg.Storage.Driver; got != driver && !(got == "" && driver == "filesystem") {
		t.Errorf("storage.driver = %q, want %q", got, driver)
	}
	return cfg
}

// checkRedis: replicas share one Redis (in-process sessions would be
// wrong with three replicas); production overlays use a managed one.
func checkRedis(t *testing.T, m *manifests, cfg stratusConfig, inCluster bool) {
	t.Helper()
	hasRedis := m.has("Deployment", "redis") && m.has("Service", "redis")
	if hasRedis != inCluster {
		t.Errorf("in-cluster Redis Deployment and Service present = %v, want %v", hasRedis, inCluster)
	}
	if cfg.Storage.Driver == "" {
		return // the base: an overlay supplies storage and redis
	}
	if len(cfg.Redis.Addrs) == 0 {
		t.Fatal("redis.addrs empty: without Redis only one replica is safe")
	}
	for _, a := range cfg.Redis.Addrs {
		host, _, _ := net.SplitHostPort(a)
		if local := host == "redis" || strings.HasSuffix(host, ".svc") || strings.HasSuffix(host, ".svc.cluster.local"); local != inCluster {
			t.Errorf("redis address %s: in-cluster = %v, want %v", a, local, inCluster)
		}
	}
}

// checkFilesystemVolume: the storage root is a PersistentVolumeClaim the
// overlay creates, not the container's (read-only) root file system.
func checkFilesystemVolume(t *testing.T, m *manifests, d *appsv1.Deployment, root string) {
	t.Helper()
	c := container(t, d, registry)
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != root {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && v.PersistentVolumeClaim != nil {
				get[corev1.PersistentVolumeClaim](t, m, "PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName)
				return
			}
		}
	}
	t.Errorf("storage.filesystem.root %s is not a mounted PersistentVolumeClaim", root)
}

func TestServiceMonitorComponent(t *testing.T) {
	// The component is optional (it needs the Prometheus Operator's
	// CRDs), so no overlay includes it; build one that does.
	mem := inMemoryCopy(t, ".", "/k8s")
	kustomization := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" +
		"resources: [../k8s/overlays/s3]\ncomponents: [../k8s/components/servicemonitor]\n"
	if err := mem.WriteFile("/monitored/kustomization.yaml", []byte(kustomization)); err != nil {
		t.Fatal(err)
	}
	m := buildFS(t, mem, "/monitored")
	d := get[appsv1.Deployment](t, m, "Deployment", registry)
	svc := get[corev1.Service](t, m, "Service", "stratus-metrics")
	if !selects(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, d.Spec.Template.Labels) {
		t.Errorf("stratus-metrics selector %v does not select the registry pods", svc.Spec.Selector)
	}
	c := container(t, d, registry)
	if len(svc.Spec.Ports) != 1 || resolvePort(c, svc.Spec.Ports[0].TargetPort) != portNumber(c, "metrics") {
		t.Errorf("stratus-metrics ports %+v, want the metrics container port", svc.Spec.Ports)
	}
	sm := all[monitoringv1.ServiceMonitor](m)
	if len(sm) != 1 {
		t.Fatalf("%d ServiceMonitors, want 1", len(sm))
	}
	if !selects(&sm[0].Spec.Selector, svc.Labels) {
		t.Errorf("ServiceMonitor selector %v does not select Service stratus-metrics", sm[0].Spec.Selector)
	}
	if len(sm[0].Spec.Endpoints) != 1 || sm[0].Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name {
		t.Errorf("ServiceMonitor endpoints %+v, want port %s", sm[0].Spec.Endpoints, svc.Spec.Ports[0].Name)
	}
}

func container(t *testing.T, d *appsv1.Deployment, name string) *corev1.Container {
	t.Helper()
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == name {
			return c
		}
	}
	t.Fatalf("Deployment %s has no container %s", d.Name, name)
	return nil
}

// portNumber is the container port of the given name, 0 if none.
func portNumber(c *corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// resolvePort turns a port given by name or number into its number.
func resolvePort(c *corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.String {
		return portNumber(c, p.StrVal)
	}
	return p.IntVal
}

// literalEnv is the container's environment with literal values; values
// from secrets are the cluster's business.
func literalEnv(c *corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			out[e.Name] = e.Value
		}
	}
	return out
}

// selects reports whether sel matches the labels (matchLabels only; the
// manifests use nothing else).
func selects(sel *metav1.LabelSelector, labels map[string]string) bool {
	if sel == nil || len(sel.MatchLabels) == 0 || len(sel.MatchExpressions) > 0 {
		return false
	}
	for k, v := range sel.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}
