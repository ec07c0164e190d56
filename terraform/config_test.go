package terraform

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"

	"github.com/stratus-registry/stratus/deploy/deploytest"
)

// TestStratusConfigRoundTrip evaluates each module's stratus_config
// output for a fixture, as Terraform would after apply, and feeds the YAML
// to `stratus config check`. Where the fixture matches the names used in
// the k8s overlay, the overlay's storage block must be exactly that
// output, so the pasted block and the module cannot drift apart.
func TestStratusConfigRoundTrip(t *testing.T) {
	bin := deploytest.BuildLikeDockerfile(t, "test")
	for _, tc := range []struct {
		name    string
		module  string
		fix     fixture
		overlay string // k8s overlay whose storage block this renders, or ""
		want    map[string]any
	}{
		{
			name:   "s3 with KMS",
			module: "s3",
			fix: fixture{
				vars: strVals(map[string]string{"bucket_name": "acme-stratus-prod", "kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/0b0f7e0e-1f2a-4c5e-9d7b-3c1e2f4a5b6c"}),
				resources: map[string]map[string]map[string]cty.Value{
					"aws_s3_bucket": {"this": strVals(map[string]string{"id": "acme-stratus-prod"})},
				},
				data: map[string]map[string]map[string]cty.Value{
					"aws_region": {"current": strVals(map[string]string{"name": "eu-west-1"})},
				},
			},
			overlay: "s3",
		},
		{
			name:   "s3 whole bucket, SSE-S3",
			module: "s3",
			fix: fixture{
				vars: strVals(map[string]string{"bucket_name": "1234", "root_directory": "/"}),
				resources: map[string]map[string]map[string]cty.Value{
					"aws_s3_bucket": {"this": strVals(map[string]string{"id": "1234"})},
				},
				data: map[string]map[string]map[string]cty.Value{
					"aws_region": {"current": strVals(map[string]string{"name": "us-east-1"})},
				},
			},
			// A bucket named like a number stays a string.
			want: map[string]any{"driver": "s3", "s3": map[string]any{"bucket": "1234", "region": "us-east-1", "sse": "AES256"}},
		},
		{
			name:   "gcs",
			module: "gcs",
			fix: fixture{
				vars: strVals(map[string]string{"project_id": "acme-prod", "bucket_name": "acme-stratus-prod", "location": "europe-west1"}),
				resources: map[string]map[string]map[string]cty.Value{
					"google_storage_bucket": {"this": strVals(map[string]string{"name": "acme-stratus-prod"})},
				},
			},
			overlay: "gcs",
		},
		{
			name:   "gcs with KMS and redirect",
			module: "gcs",
			fix: fixture{
				vars: map[string]cty.Value{
					"project_id":   cty.StringVal("acme-prod"),
					"bucket_name":  cty.StringVal("acme-stratus"),
					"location":     cty.StringVal("EU"),
					"kms_key_name": cty.StringVal("projects/acme-prod/locations/eu/keyRings/r/cryptoKeys/k"),
					"redirect":     cty.True,
				},
				resources: map[string]map[string]map[string]cty.Value{
					"google_storage_bucket": {"this": strVals(map[string]string{"name": "acme-stratus"})},
				},
			},
			want: map[string]any{"driver": "gcs", "gcs": map[string]any{
				"bucket": "acme-stratus", "root_directory": "stratus", "redirect": true,
				"kms_key_name": "projects/acme-prod/locations/eu/keyRings/r/cryptoKeys/k",
			}},
		},
		{
			name:   "azure",
			module: "azure",
			fix: fixture{
				vars: strVals(map[string]string{"resource_group_name": "stratus", "location": "westeurope", "storage_account_name": "acmestratusprod"}),
				resources: map[string]map[string]map[string]cty.Value{
					"azurerm_storage_account":   {"this": strVals(map[string]string{"name": "acmestratusprod"})},
					"azurerm_storage_container": {"this": strVals(map[string]string{"name": "registry"})},
				},
			},
			overlay: "azure",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := newEvaluator(parseModule(t, tc.module), tc.fix).output("stratus_config")
			if err != nil {
				t.Fatal(err)
			}
			if v.Type() != cty.String {
				t.Fatalf("stratus_config is a %s, want YAML text", v.Type().FriendlyName())
			}
			rendered := v.AsString()
			t.Logf("stratus_config:\n%s", rendered)
			if out, ok := deploytest.ConfigCheck(t, bin, []byte(rendered), nil); !ok {
				t.Fatalf("stratus config check rejects the module's output:\n%s\n--- output\n%s", out, rendered)
			}
			got := storageSection(t, []byte(rendered))
			want := tc.want
			if tc.overlay != "" {
				data, err := os.ReadFile(filepath.Join("..", "k8s", "overlays", tc.overlay, "stratus.yaml"))
				if err != nil {
					t.Fatal(err)
				}
				want = storageSection(t, data)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("storage block\n got %v\nwant %v\n--- output\n%s", got, want, rendered)
			}
		})
	}
}

func storageSection(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	s, ok := doc["storage"].(map[string]any)
	if !ok {
		t.Fatalf("no storage section in\n%s", data)
	}
	return s
}

// s3Actions maps each S3 API call of the driver to the IAM actions it
// needs (docs.aws.amazon.com/service-authorization, "Amazon S3").
var s3Actions = map[string][]string{
	"GetObject":               {"s3:GetObject"},
	"HeadObject":              {"s3:GetObject"},
	"PresignGetObject":        {"s3:GetObject"},
	"PutObject":               {"s3:PutObject"},
	"CreateMultipartUpload":   {"s3:PutObject"},
	"UploadPart":              {"s3:PutObject"},
	"CompleteMultipartUpload": {"s3:PutObject"},
	"UploadPartCopy":          {"s3:PutObject", "s3:GetObject"},
	"DeleteObject":            {"s3:DeleteObject"},
	"DeleteObjects":           {"s3:DeleteObject"},
	"AbortMultipartUpload":    {"s3:AbortMultipartUpload"},
	"ListParts":               {"s3:ListMultipartUploadParts"},
	"ListMultipartUploads":    {"s3:ListBucketMultipartUploads"},
	"ListObjectsV2":           {"s3:ListBucket"},
}

// TestS3PolicyMatchesDriver: the module's IAM policy grants exactly the
// S3 actions of the calls storage/s3 makes: a new call without its action
// would fail in production with AccessDenied, an action no call needs is
// more than least privilege.
func TestS3PolicyMatchesDriver(t *testing.T) {
	calls := driverCalls(t, filepath.Join("..", "storage", "s3"))
	var want []string
	for _, call := range calls {
		actions, ok := s3Actions[call]
		if !ok {
			t.Errorf("storage/s3 calls %s: add its IAM actions to s3Actions and to the policy", call)
		}
		want = append(want, actions...)
	}
	slices.Sort(want)
	want = slices.Compact(want)

	var got []string
	for _, b := range parseModule(t, "s3").blocks {
		if b.Type == "data" && b.Labels[0] == "aws_iam_policy_document" && b.Labels[1] == "driver" {
			got = collectActions(t, b.Body)
		}
	}
	var s3Only []string
	for _, a := range got {
		if strings.HasPrefix(a, "s3:") {
			s3Only = append(s3Only, a)
		} else if !strings.HasPrefix(a, "kms:") {
			t.Errorf("policy grants %s, which the driver never needs", a)
		}
	}
	slices.Sort(s3Only)
	s3Only = slices.Compact(s3Only)
	if !slices.Equal(s3Only, want) {
		t.Errorf("policy grants %v; the driver's calls %v need %v", s3Only, calls, want)
	}
}

// driverCalls lists the methods the driver calls on its S3 clients
// (fields named client and presign) in its non-test files.
func driverCalls(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var calls []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			method, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if recv, ok := method.X.(*ast.SelectorExpr); ok && (recv.Sel.Name == "client" || recv.Sel.Name == "presign") {
				calls = append(calls, method.Sel.Name)
			}
			return true
		})
	}
	slices.Sort(calls)
	calls = slices.Compact(calls)
	if len(calls) == 0 {
		t.Fatalf("found no S3 calls in %s; has the driver moved?", dir)
	}
	return calls
}

// collectActions gathers every actions list in a policy document,
// including those inside dynamic statements.
func collectActions(t *testing.T, body *hclsyntax.Body) []string {
	t.Helper()
	var out []string
	if a, ok := body.Attributes["actions"]; ok {
		list, err := stringList(a.Expr)
		if err != nil {
			t.Fatalf("actions: %v", err)
		}
		out = append(out, list...)
	}
	for _, b := range body.Blocks {
		out = append(out, collectActions(t, b.Body)...)
	}
	return out
}
