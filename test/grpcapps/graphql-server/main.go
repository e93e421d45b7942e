// Command graphql-server is the GraphQL server of cmd/wirescope's
// TestGraphQLRecorded: graph-gophers/graphql-go and its relay HTTP handler at
// /graphql, served over HTTP/1.1 (-http1) and over cleartext HTTP/2 (-h2c,
// golang.org/x/net/http2/h2c: prior knowledge or an Upgrade: h2c request).
// It prints "graphql-server: listening on ADDR ADDR" to stderr once both
// accept connections.
//
// The relay handler takes a JSON POST of one operation only: a batch (a JSON
// array) is refused with 400. A GET with ?query= (and operationName,
// variables) is answered by this program, calling the same schema.
//
// POST /search is a JSON API that is not GraphQL ({"hits":[]}).
//
// The schema has queries (hello, books, broken: a resolver that fails, so the
// answer is HTTP 200 with "errors") and a mutation (addBook).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"

	graphql "github.com/graph-gophers/graphql-go"
	"github.com/graph-gophers/graphql-go/relay"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

const schema = `
schema {
	query: Query
	mutation: Mutation
}
type Query {
	hello(name: String!): String!
	books: [Book!]!
	broken: String
}
type Mutation {
	addBook(title: String!): Book!
}
type Book {
	id: ID!
	title: String!
}
`

type book struct {
	id    graphql.ID
	title string
}

func (b *book) ID() graphql.ID { return b.id }
func (b *book) Title() string  { return b.title }

type resolver struct {
	mu    sync.Mutex
	books []*book
}

func (r *resolver) Hello(args struct{ Name string }) string { return "Hello " + args.Name }

func (r *resolver) Books() []*book {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*book(nil), r.books...)
}

func (r *resolver) Broken() (*string, error) {
	return nil, fmt.Errorf("the broken resolver failed")
}

func (r *resolver) AddBook(args struct{ Title string }) *book {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := &book{id: graphql.ID(strconv.Itoa(len(r.books) + 1)), title: args.Title}
	r.books = append(r.books, b)
	return b
}

// handler serves GET ?query= itself and everything else with relay's.
func handler(s *graphql.Schema) http.Handler {
	post := &relay.Handler{Schema: s}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			post.ServeHTTP(w, r)
			return
		}
		q := r.URL.Query()
		var vars map[string]any
		if v := q.Get("variables"); v != "" {
			if err := json.Unmarshal([]byte(v), &vars); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		resp := s.Exec(context.Background(), q.Get("query"), q.Get("operationName"), vars)
		b, err := json.Marshal(resp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
}

func main() {
	h1 := flag.String("http1", "127.0.0.1:8081", "address for HTTP/1.1")
	h2 := flag.String("h2c", "127.0.0.1:8082", "address for cleartext HTTP/2")
	flag.Parse()
	s := graphql.MustParseSchema(schema, &resolver{books: []*book{{id: "0", title: "The Go Programming Language"}}})
	mux := http.NewServeMux()
	mux.Handle("/graphql", handler(s))
	// A JSON API that is not GraphQL though its body has a "query": the
	// body is read whole before the answer (a handler that answers first
	// has Go's HTTP/2 server reset the stream, which curl reports as an
	// error).
	mux.HandleFunc("/search", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"hits":[]}`)
	})

	l1, err := net.Listen("tcp", *h1)
	if err != nil {
		log.Fatal(err)
	}
	l2, err := net.Listen("tcp", *h2)
	if err != nil {
		log.Fatal(err)
	}
	// HTTP/1.1 alone on the first: no h2c there.
	srv1 := &http.Server{Handler: mux}
	srv2 := &http.Server{Handler: h2c.NewHandler(mux, &http2.Server{})}
	fmt.Fprintf(os.Stderr, "graphql-server: listening on %s %s\n", l1.Addr(), l2.Addr())
	errs := make(chan error, 2)
	go func() { errs <- srv1.Serve(l1) }()
	go func() { errs <- srv2.Serve(l2) }()
	log.Fatal(<-errs)
}
