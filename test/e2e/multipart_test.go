//go:build unix

package e2e

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// binaryPayloadScript is Azure's binary-payload sample in miniature: one uploaded file in,
// a processed image out (here its bytes reversed); several files in, JSON of their sizes out.
const binaryPayloadScript = `from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(req: AMLRequest):
    files = req.files.getlist("file")
    if len(files) == 1:
        return AMLResponse(files[0].read()[::-1], 200, response_headers={"Content-Type": "image/png"})
    return {f.filename: len(f.read()) for f in files}
`

// testPNG encodes a small gradient as PNG.
func testPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), uint8(x ^ y), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// postFiles uploads files (name → bytes) under the form field "file" through the router.
func postFiles(t *testing.T, s *server, key string, names []string, data [][]byte) (int, http.Header, []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for i, name := range names {
		w, err := mw.CreateFormFile("file", name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data[i])
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/endpoints/dataplane/score", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// A multipart upload of an image reaches request.files through the router and the answer
// is the processed image; several files give JSON. Also with curl -F when curl is installed.
func TestMultipartUploadThroughTheRouter(t *testing.T) {
	s := startServer(t, "")
	deployScript(t, s, "binary", binaryPayloadScript, "", "--all-traffic")
	key, _ := s.keys("dataplane")
	img := testPNG(t)
	want := slices.Clone(img)
	slices.Reverse(want)

	status, h, out := postFiles(t, s, key, []string{"input.png"}, [][]byte{img})
	if status != 200 || h.Get("Content-Type") != "image/png" || !bytes.Equal(out, want) {
		t.Fatalf("one file: %d %s, %d bytes (want %d): %.200q", status, h.Get("Content-Type"), len(out), len(want), out)
	}

	status, h, out = postFiles(t, s, key, []string{"a.png", "b.txt"}, [][]byte{img, []byte("hello")})
	var sizes map[string]int
	if err := json.Unmarshal(out, &sizes); err != nil || status != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("several files: %d %s %q: %v", status, h.Get("Content-Type"), out, err)
	}
	if d := cmp.Diff(map[string]int{"a.png": len(img), "b.txt": 5}, sizes); d != "" {
		t.Fatalf("several files (-want +got):\n%s", d)
	}

	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Log("curl is not installed: the curl -F check is skipped")
		return
	}
	dir := t.TempDir()
	in, outFile := filepath.Join(dir, "input.png"), filepath.Join(dir, "out.png")
	if err := os.WriteFile(in, img, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(curl, "-sS", "-f", "-o", outFile, "-w", "%{http_code} %{content_type}",
		"-H", "Authorization: Bearer "+key, "-F", "file=@"+in, s.URL+"/endpoints/dataplane/score")
	res, err := cmd.CombinedOutput()
	if err != nil || string(res) != "200 image/png" {
		t.Fatalf("curl -F: %v: %s", err, res)
	}
	if got, err := os.ReadFile(outFile); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("curl -F: %d bytes (want %d): %v", len(got), len(want), err)
	}
}
