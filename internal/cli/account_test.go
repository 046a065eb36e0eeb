package cli

import (
	"strings"
	"testing"
)

func TestTokenCommands(t *testing.T) {
	const token = `{"accessToken":"h.p.s","expiresOn":"2025-03-01 13:00:00.000000","expires_on":1740834000,"subscription":"s","tenant":"t","tokenType":"Bearer"}`
	f := newFakeServer(t, map[string]answer{
		"POST /token":                  {body: token},
		"POST /endpoints/tok/listkeys": {body: `{"accessToken":"e.p.s","expiryTimeUtc":1740834000,"refreshAfterTimeUtc":1740832200,"tokenType":"Bearer"}`},
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"account", "get-access-token", "--query", "accessToken", "-o", "tsv"}, "h.p.s\n"},
		{[]string{"account", "get-access-token", "--resource", "https://ml.azure.com", "--query", "expires_on", "-o", "tsv"}, "1740834000\n"},
		{[]string{"account", "get-access-token", "--scope", "https://ml.azure.com/.default", "--query", "tokenType", "-o", "tsv"}, "Bearer\n"},
		{[]string{"online-endpoint", "get-credentials", "-n", "tok", "--query", "accessToken", "-o", "tsv"}, "e.p.s\n"},
		{[]string{"online-endpoint", "get-credentials", "-n", "tok", "--query", "[expiryTimeUtc, refreshAfterTimeUtc, tokenType]", "-o", "tsv"}, "1740834000\n1740832200\nBearer\n"},
	} {
		out, stderr, err := f.berth(t, tc.args...)
		if err != nil {
			t.Errorf("%v: %v\n%s", tc.args, err, stderr)
			continue
		}
		if out != tc.want {
			t.Errorf("%v: stdout = %q, want %q", tc.args, out, tc.want)
		}
	}
	var bodies []string
	for _, r := range f.requests() {
		if r.Path == "/token" {
			bodies = append(bodies, strings.TrimSpace(r.Body))
		}
	}
	want := []string{`{}`, `{"resource":"https://ml.azure.com"}`, `{"resource":"https://ml.azure.com/.default"}`}
	if strings.Join(bodies, " ") != strings.Join(want, " ") {
		t.Errorf("token request bodies %q, want %q", bodies, want)
	}
	if _, _, err := f.berth(t, "account", "get-access-token", "--resource", "a", "--scope", "b"); err == nil {
		t.Error("--resource with --scope was accepted")
	}
}
