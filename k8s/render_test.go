package k8s

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kinds maps every apiVersion/kind the manifests may contain to its Go
// type. An object of any other kind fails the build test: everything
// shipped is checked against a schema.
var kinds = map[string]func() any{
	"v1/Namespace":                  func() any { return new(corev1.Namespace) },
	"v1/ServiceAccount":             func() any { return new(corev1.ServiceAccount) },
	"v1/ConfigMap":                  func() any { return new(corev1.ConfigMap) },
	"v1/Service":                    func() any { return new(corev1.Service) },
	"v1/PersistentVolumeClaim":      func() any { return new(corev1.PersistentVolumeClaim) },
	"apps/v1/Deployment":            func() any { return new(appsv1.Deployment) },
	"policy/v1/PodDisruptionBudget": func() any { return new(policyv1.PodDisruptionBudget) },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any {
		return new(autoscalingv2.HorizontalPodAutoscaler)
	},
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return new(networkingv1.NetworkPolicy) },
	"networking.k8s.io/v1/Ingress":            func() any { return new(networkingv1.Ingress) },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return new(monitoringv1.ServiceMonitor) },
}

// manifests is the output of one kustomize build, each object decoded
// into its API type.
type manifests struct {
	objects map[string]any // "Kind/name" -> *T
}

// build runs kustomize on dir, as `kubectl apply -k dir` would, and
// decodes every object strictly: a field the API type does not have (a
// typo, a field at the wrong level) is an error, not silently dropped.
func build(t *testing.T, dir string) *manifests {
	t.Helper()
	return buildFS(t, filesys.MakeFsOnDisk(), dir)
}

func buildFS(t *testing.T, fs filesys.FileSystem, dir string) *manifests {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	resources, err := krusty.MakeKustomizer(opts).Run(fs, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	m := &manifests{objects: map[string]any{}}
	for _, r := range resources.Resources() {
		data, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %v", r.CurId(), err)
		}
		gvk := r.GetGvk()
		kind := gvk.ApiVersion() + "/" + gvk.Kind
		newObj, ok := kinds[kind]
		if !ok {
			t.Fatalf("%s: %s has no API type in this test; add it to kinds", dir, kind)
		}
		obj := newObj()
		if err := yaml.UnmarshalStrict(data, obj); err != nil {
			t.Fatalf("%s: %s %s does not decode strictly: %v", dir, kind, r.GetName(), err)
		}
		key := gvk.Kind + "/" + r.GetName()
		if _, dup := m.objects[key]; dup {
			t.Fatalf("%s: two objects %s", dir, key)
		}
		m.objects[key] = obj
	}
	return m
}

// inMemoryCopy copies the directory tree at dir into an in-memory file
// system under root, so a test can add a kustomization next to it without
// writing into the source tree (kustomize refuses absolute bases).
func inMemoryCopy(t *testing.T, dir, root string) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return mem.WriteFile(filepath.Join(root, rel), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	return mem
}

// get returns the object of the given kind and name, failing the test
// when it is missing.
func get[T any](t *testing.T, m *manifests, kind, name string) *T {
	t.Helper()
	obj, ok := m.objects[kind+"/"+name]
	if !ok {
		t.Fatalf("no %s %q in the build", kind, name)
	}
	typed, ok := obj.(*T)
	if !ok {
		t.Fatalf("%s %q is a %T", kind, name, obj)
	}
	return typed
}

// all returns every object of type T.
func all[T any](m *manifests) []*T {
	var out []*T
	for _, obj := range m.objects {
		if typed, ok := obj.(*T); ok {
			out = append(out, typed)
		}
	}
	return out
}

// has reports whether an object of the kind and name exists.
func (m *manifests) has(kind, name string) bool {
	_, ok := m.objects[kind+"/"+name]
	return ok
}

func (m *manifests) String() string { return fmt.Sprint(len(m.objects), " objects") }
