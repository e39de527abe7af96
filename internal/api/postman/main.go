// Command postman writes the Postman collection of Lipa's app API,
// docs/postman/lipa.postman_collection.json, from the OpenAPI document
// (internal/api/openapi.json). Run it from anywhere in the repository:
//
//	go generate ./internal/api
//	go run ./internal/api/postman
//
// A test fails when the committed collection differs from what this
// command writes, so a change to the document comes with the collection.
// The collection (format v2.1) has one folder per tag and one request per
// operation, in the document's order, with the collection variables
// baseUrl (default http://127.0.0.1:8000) and apiKey; STK pushes send a new
// Idempotency-Key each time ({{$guid}}). Postman and Thunder Client import
// it.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/lipa-gateway/lipa/internal/api"
)

// output is the collection's path from the repository root.
const output = "docs/postman/lipa.postman_collection.json"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "postman:", err)
		os.Exit(1)
	}
}

func run() error {
	out, err := collection(api.OpenAPI())
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	path := filepath.Join(root, filepath.FromSlash(output))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}

// moduleRoot returns the nearest directory upwards that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; run this inside the repository")
		}
		dir = parent
	}
}

// The Postman collection format v2.1, as far as Lipa uses it.
type (
	pmCollection struct {
		Info     pmInfo       `json:"info"`
		Auth     *pmAuth      `json:"auth,omitempty"`
		Variable []pmVariable `json:"variable,omitempty"`
		Item     []pmFolder   `json:"item"`
	}
	pmInfo struct {
		PostmanID   string `json:"_postman_id"`
		Name        string `json:"name"`
		Description string `json:"description"`
		Schema      string `json:"schema"`
	}
	pmAuth struct {
		Type   string       `json:"type"`
		APIKey []pmVariable `json:"apikey,omitempty"`
	}
	pmVariable struct {
		Key         string `json:"key"`
		Value       string `json:"value"`
		Type        string `json:"type,omitempty"`
		Description string `json:"description,omitempty"`
		Disabled    bool   `json:"disabled,omitempty"`
	}
	pmFolder struct {
		Name        string   `json:"name"`
		Description string   `json:"description,omitempty"`
		Item        []pmItem `json:"item"`
	}
	pmItem struct {
		Name     string    `json:"name"`
		Request  pmRequest `json:"request"`
		Response []any     `json:"response"`
	}
	pmRequest struct {
		Method      string       `json:"method"`
		Description string       `json:"description,omitempty"`
		Auth        *pmAuth      `json:"auth,omitempty"`
		Header      []pmVariable `json:"header"`
		Body        *pmBody      `json:"body,omitempty"`
		URL         pmURL        `json:"url"`
	}
	pmBody struct {
		Mode    string `json:"mode"`
		Raw     string `json:"raw"`
		Options any    `json:"options"`
	}
	pmURL struct {
		Raw      string       `json:"raw"`
		Host     []string     `json:"host"`
		Path     []string     `json:"path"`
		Query    []pmVariable `json:"query,omitempty"`
		Variable []pmVariable `json:"variable,omitempty"`
	}
)

// collection returns the Postman collection of the OpenAPI document data,
// as indented JSON ending in a newline. The same document always gives the
// same bytes.
func collection(data []byte) ([]byte, error) {
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load the OpenAPI document: %w", err)
	}
	order, err := pathOrder(data)
	if err != nil {
		return nil, err
	}
	c := pmCollection{
		Info: pmInfo{
			// A fixed id: Postman replaces the collection it imported before.
			PostmanID: "5d1c6f0e-8a53-4b0e-9c51-1f6a3c2f7a10",
			Name:      doc.Info.Title,
			Description: doc.Info.Description + "\n\nGenerated from internal/api/openapi.json by `go run ./internal/api/postman`; do not edit. " +
				"Set the collection variables baseUrl (your Lipa) and apiKey (the app's key from `lipa apps create`).",
			Schema: "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
		},
		Auth: &pmAuth{Type: "apikey", APIKey: []pmVariable{
			{Key: "key", Value: "X-API-KEY", Type: "string"},
			{Key: "value", Value: "{{apiKey}}", Type: "string"},
			{Key: "in", Value: "header", Type: "string"},
		}},
		Variable: []pmVariable{
			{Key: "baseUrl", Value: "http://127.0.0.1:8000", Type: "string"},
			{Key: "apiKey", Value: "", Type: "string"},
		},
	}
	folders := map[string]int{}
	for _, tag := range doc.Tags {
		folders[tag.Name] = len(c.Item)
		c.Item = append(c.Item, pmFolder{Name: tag.Name, Description: tag.Description, Item: []pmItem{}})
	}
	for _, path := range order {
		item := doc.Paths.Value(path)
		for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			op := item.GetOperation(method)
			if op == nil {
				continue
			}
			req, err := request(doc, path, method, op)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, path, err)
			}
			if len(op.Tags) == 0 {
				return nil, fmt.Errorf("%s %s: no tag, so no folder", method, path)
			}
			i, ok := folders[op.Tags[0]]
			if !ok {
				return nil, fmt.Errorf("%s %s: tag %q is not in the document's tags", method, path, op.Tags[0])
			}
			c.Item[i].Item = append(c.Item[i].Item, pmItem{Name: op.Summary, Request: req, Response: []any{}})
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// request returns the Postman request of one operation.
func request(doc *openapi3.T, path, method string, op *openapi3.Operation) (pmRequest, error) {
	r := pmRequest{Method: method, Description: op.Description, Header: []pmVariable{}}
	if op.Security != nil && len(*op.Security) == 0 {
		r.Auth = &pmAuth{Type: "noauth"}
	}
	var segs []string
	for _, s := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			s = ":" + s[1:len(s)-1]
		}
		segs = append(segs, s)
	}
	r.URL = pmURL{Raw: "{{baseUrl}}/" + strings.Join(segs, "/"), Host: []string{"{{baseUrl}}"}, Path: segs}
	for _, p := range op.Parameters {
		v := p.Value
		example := ""
		if v.Example != nil {
			example = fmt.Sprint(v.Example)
		}
		switch v.In {
		case "path":
			r.URL.Variable = append(r.URL.Variable, pmVariable{Key: v.Name, Value: example, Description: v.Description})
		case "query":
			r.URL.Query = append(r.URL.Query, pmVariable{Key: v.Name, Value: example, Description: v.Description, Disabled: true})
		case "header":
			switch v.Name {
			case "Idempotency-Key":
				r.Header = append(r.Header, pmVariable{Key: v.Name, Value: "{{$guid}}", Type: "text", Description: v.Description})
			default:
				r.Header = append(r.Header, pmVariable{Key: v.Name, Value: example, Type: "text", Description: v.Description, Disabled: true})
			}
		}
	}
	if op.RequestBody != nil {
		mt := op.RequestBody.Value.Content.Get("application/json")
		if mt == nil || mt.Example == nil {
			return r, errors.New("the request body has no application/json example")
		}
		raw, err := json.MarshalIndent(mt.Example, "", "  ")
		if err != nil {
			return r, err
		}
		r.Header = slices.Insert(r.Header, 0, pmVariable{Key: "Content-Type", Value: "application/json", Type: "text"})
		r.Body = &pmBody{Mode: "raw", Raw: string(raw), Options: map[string]any{"raw": map[string]string{"language": "json"}}}
	}
	return r, nil
}

// pathOrder returns the keys of the document's "paths" object in the
// order they are written.
func pathOrder(data []byte) ([]string, error) {
	var top struct {
		Paths json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(top.Paths))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var order []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		order = append(order, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return order, nil
}
