package inference

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// formFile is one part of a multipart body: a file when filename is set, else a field.
type formFile struct {
	field, filename, contentType string
	data                         []byte
}

// multipartBody builds a multipart/form-data body as curl -F would; it returns the body
// and its Content-Type.
func multipartBody(t *testing.T, parts ...formFile) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		disp := fmt.Sprintf("form-data; name=%q", p.field)
		if p.filename != "" {
			disp += fmt.Sprintf("; filename=%q", p.filename)
		}
		h.Set("Content-Disposition", disp)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.data)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// send posts body to url with a Content-Type and extra headers (repeated names are sent
// as repeated header lines).
func send(t *testing.T, url string, body []byte, contentType string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// image is binary data with line breaks, NULs and boundary-like dashes, as a real image has.
func image() []byte {
	b := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	for i := range 70000 {
		b = append(b, byte(i*7+i/251))
	}
	return append(b, "\r\n--\r\n\n--x\r"...)
}

func reversed(b []byte) []byte {
	r := slices.Clone(b)
	slices.Reverse(r)
	return r
}

// One uploaded file reaches request.files and the processed image comes back as image/png.
func TestAMLRequestOneFileInImageOut(t *testing.T) {
	url, log := serve(t, "multipart_score.py", 1)
	img := image()
	body, ctype := multipartBody(t, formFile{field: "file", filename: "input.png", contentType: "image/png", data: img})
	resp, out := send(t, url+"/score", body, ctype)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("%d %s %.200q\nlog:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), out, log)
	}
	if !bytes.Equal(out, reversed(img)) {
		t.Fatalf("got %d bytes, want the %d bytes of the upload reversed", len(out), len(img))
	}
}

// Several files under one field name give a JSON object of their sizes.
func TestAMLRequestSeveralFilesInJSONOut(t *testing.T) {
	url, _ := serve(t, "multipart_score.py", 1)
	body, ctype := multipartBody(t,
		formFile{field: "file", filename: "a.jpg", contentType: "image/jpeg", data: image()},
		formFile{field: "file", filename: "b.txt", data: []byte("hello\r\n")},
		formFile{field: "file", filename: "empty.bin"},
		formFile{field: "note", data: []byte("not a file")},
	)
	resp, out := send(t, url+"/score", body, ctype)
	var got map[string]int
	if err := json.Unmarshal(out, &got); err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s %q: %v", resp.StatusCode, resp.Header.Get("Content-Type"), out, err)
	}
	want := map[string]int{"a.jpg": len(image()), "b.txt": 7, "empty.bin": 0}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("sizes (-want +got):\n%s", d)
	}
}

// Form fields, query arguments and headers as Flask has them.
func TestAMLRequestFormArgsHeaders(t *testing.T) {
	url, _ := serve(t, "multipart_score.py", 1)
	body, ctype := multipartBody(t,
		formFile{field: "note", data: []byte("héllo")},
		formFile{field: "k", data: []byte("v1")},
		formFile{field: "k", data: []byte("v2")},
	)
	resp, out := send(t, url+"/score?a=1&a=2&b=", body, ctype, "X-Multi", "1", "X-Multi", "2", "x-one", "yes")
	var got struct {
		Form, Args    map[string][]string
		Headers       [][2]string
		XMulti        string `json:"x_multi"`
		HasCT         bool   `json:"has_ct"`
		Mimetype, URL string
		Stream        int
		ContentLength int    `json:"content_length"`
		Host          string `json:"host"`
		RemoteAddr    string `json:"remote_addr"`
	}
	if err := json.Unmarshal(out, &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %q: %v", resp.StatusCode, out, err)
	}
	if d := cmp.Diff(map[string][]string{"note": {"héllo"}, "k": {"v1", "v2"}}, got.Form); d != "" {
		t.Errorf("form (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string][]string{"a": {"1", "2"}, "b": {""}}, got.Args); d != "" {
		t.Errorf("args (-want +got):\n%s", d)
	}
	if d := cmp.Diff([][2]string{{"X-Multi", "1, 2"}, {"X-One", "yes"}}, got.Headers); d != "" {
		t.Errorf("headers as (name, value) pairs (-want +got):\n%s", d)
	}
	if got.XMulti != "1, 2" || !got.HasCT || got.Mimetype != "multipart/form-data" || !strings.HasSuffix(got.URL, "/score?a=1&a=2&b=") {
		t.Errorf("x-multi %q, content-type in headers %v, mimetype %q, url %q", got.XMulti, got.HasCT, got.Mimetype, got.URL)
	}
	if got.Stream != len(body) || got.ContentLength != len(body) {
		t.Errorf("stream %d bytes, content_length %d; the body has %d", got.Stream, got.ContentLength, len(body))
	}
	if !strings.HasPrefix(url, "http://"+got.Host) || got.RemoteAddr != "127.0.0.1" {
		t.Errorf("host %q (url %s), remote_addr %q: want the request's Host and the client's address", got.Host, url, got.RemoteAddr)
	}
	// A @rawhttp run() answers OPTIONS itself.
	req, _ := http.NewRequest(http.MethodOptions, url+"/score", nil)
	opt, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	opt.Body.Close()
	if opt.StatusCode != 204 || opt.Header.Get("X-Seen-By") != "run" {
		t.Errorf("OPTIONS: %d %v, want run()'s 204", opt.StatusCode, opt.Header)
	}
}

// get_json and missing keys answer as Flask does: JSON only for a JSON Content-Type unless
// forced, 415 otherwise, 400 for a bad body or a missing form field, None when silent.
func TestAMLRequestJSONAndErrors(t *testing.T) {
	url, _ := serve(t, "multipart_score.py", 1)
	for _, c := range []struct {
		name, query, ctype, body string
		status                   int
		want                     string
	}{
		{"json", "?json=1", "application/json", `{"x": [1, 2]}`, 200, `{"json": {"x": [1, 2]}}`},
		{"+json", "?json=1", "application/vnd.api+json; charset=utf-8", `[1]`, 200, `{"json": [1]}`},
		{"not json type", "?json=1", "text/plain", `{"x": 1}`, 415, ""},
		{"not json type, silent", "?json=1&silent=1", "text/plain", `{"x": 1}`, 200, `{"json": null}`},
		{"bad json", "?json=1", "application/json", `{x`, 400, ""},
		{"bad json, silent", "?json=1&silent=1", "application/json", `{x`, 200, `{"json": null}`},
		{"missing form field", "?missing=1", "application/x-www-form-urlencoded", `a=1`, 400, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, out := send(t, url+"/score"+c.query, []byte(c.body), c.ctype)
			if resp.StatusCode != c.status || (c.want != "" && string(out) != c.want) {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, out, c.status, c.want)
			}
		})
	}
	resp, out := send(t, url+"/score?x=1", []byte("plain text"), "text/plain")
	var got struct{ Data string }
	if err := json.Unmarshal(out, &got); err != nil || resp.StatusCode != 200 || got.Data != "plain text" {
		t.Fatalf("get_data: %d %s %v", resp.StatusCode, out, err)
	}
}

// The multipart parser uses only what Python 3.9 to 3.13 all have (3.13 has no cgi module).
func TestAMLRequestAcrossPythonVersions(t *testing.T) {
	img := image()
	body, ctype := multipartBody(t, formFile{field: "file", filename: "input.png", contentType: "image/png", data: img})
	for _, python := range []string{"python3.9", "python3.13"} {
		t.Run(python, func(t *testing.T) {
			path, err := exec.LookPath(python)
			if err != nil || exec.Command(path, "-c", "pass").Run() != nil {
				t.Skipf("%s is not installed", python)
			}
			inst, err := Start(t.Context(), Config{EntryScript: filepath.Join("testdata", "multipart_score.py"), ModelDir: t.TempDir(), Python: path, Log: &lockedLog{}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(inst.Stop)
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if code, _ := scoreLocal(t.Context(), inst, "GET", "/", ""); code == 200 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: the instance did not become healthy", python)
				}
			}
			req := httptest.NewRequest(http.MethodPost, "/score", bytes.NewReader(body))
			req.Header.Set("Content-Type", ctype)
			rec := httptest.NewRecorder()
			inst.Handler().ServeHTTP(rec, req)
			if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), reversed(img)) {
				t.Fatalf("%d, %d bytes: %.200q", rec.Code, rec.Body.Len(), rec.Body.Bytes())
			}
		})
	}
}
