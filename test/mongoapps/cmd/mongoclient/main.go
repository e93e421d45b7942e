// Command mongoclient runs one fixed scenario against a MongoDB wire
// protocol server (FerretDB in scripts/record-mongo.sh) with the official Go
// driver, go.mongodb.org/mongo-driver v1, and prints one JSON object a line
// on stdout for every operation it made, in order: what it was, what the
// driver answered (ok, or the server error's code and codeName), and the
// commands the driver sent for it, as its command monitor saw them (request
// ID, name, outcome, documents per batch). The recording's manifest is made
// of these lines.
//
//	{"seq":1,"client":"main","op":"ping","database":"shop","status":"ok",
//	 "commands":[{"command":"ping","database":"shop","request_id":7,"status":"ok"}]}
//
// The scenario: ping and hello; insertOne; insertMany (the documents go in
// an OP_MSG document sequence, a kind-1 section); find with a filter; find
// with batchSize 2 over 10 documents (find, then getMore until the cursor
// is spent); aggregate; updateOne; deleteMany; countDocuments; an insert of
// a duplicate _id (write error 11000, DuplicateKey); a command the server
// does not know (59, CommandNotFound); an unacknowledged insert (w:0: an
// OP_MSG with moreToCome, no answer awaited) on a client of its own; a
// client offering compression (snappy, zlib, zstd) that pings.
//
// Commands the driver sends on its own are not in the lines: the handshake
// on each new connection (hello, or legacy isMaster), the monitor's
// heartbeats, endSessions at disconnect. The command monitor does not see
// them; record-mongo.sh says what tshark shows of them.
//
// It exits 1 if an outcome is not the one the scenario expects.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/writeconcern"
)

// command is one command the driver sent, as its command monitor saw it.
type command struct {
	Command     string       `json:"command"`
	Database    string       `json:"database"`
	RequestID   int64        `json:"request_id"`
	Status      string       `json:"status"`              // ok, error, or sent (w:0: no answer awaited)
	Documents   *int         `json:"documents,omitempty"` // sent in the insert's document sequence
	Batch       *int         `json:"batch,omitempty"`     // documents in the answer's firstBatch/nextBatch
	CursorOpen  *bool        `json:"cursor_open,omitempty"`
	N           *int32       `json:"n,omitempty"`
	NModified   *int32       `json:"n_modified,omitempty"`
	WriteErrors []writeError `json:"write_errors,omitempty"`
	Code        *int32       `json:"code,omitempty"`     // a failed command's (CommandError)
	CodeName    string       `json:"codeName,omitempty"` // a failed command's: from the error, or the failure's "(Name)"
	Failure     string       `json:"failure,omitempty"`

	unacknowledged bool // w:0: the driver reads no answer, and makes one up
}

type writeError struct {
	Index int    `json:"index"`
	Code  int    `json:"code"`
	Msg   string `json:"message"`
}

type opError struct {
	Code     int32  `json:"code"`
	CodeName string `json:"codeName,omitempty"`
	Message  string `json:"message"`
}

type line struct {
	Seq        int       `json:"seq"`
	Client     string    `json:"client"`
	Op         string    `json:"op"`
	Database   string    `json:"database"`
	Collection string    `json:"collection,omitempty"`
	Detail     any       `json:"detail,omitempty"`
	Status     string    `json:"status"`
	Result     any       `json:"result,omitempty"`
	Error      *opError  `json:"error,omitempty"`
	Commands   []command `json:"commands"`
}

// monitor keeps the commands started since the last take, in order.
type monitor struct {
	mu       sync.Mutex
	commands []command
	byID     map[int64]int
}

func (m *monitor) started(_ context.Context, e *event.CommandStartedEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := command{Command: e.CommandName, Database: e.DatabaseName, RequestID: e.RequestID, Status: "sent"}
	if w, err := e.Command.LookupErr("writeConcern", "w"); err == nil {
		if n, ok := w.AsInt64OK(); ok && n == 0 {
			c.unacknowledged = true
		}
	}
	if docs, err := e.Command.LookupErr("documents"); err == nil {
		if a, ok := docs.ArrayOK(); ok {
			vals, _ := a.Values()
			c.Documents = ptr(len(vals))
		}
	}
	m.byID[e.RequestID] = len(m.commands)
	m.commands = append(m.commands, c)
}

func (m *monitor) succeeded(_ context.Context, e *event.CommandSucceededEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.byID[e.RequestID]
	if !ok {
		return
	}
	c := &m.commands[i]
	// An unacknowledged write "succeeds" with {ok: 1} made up by the
	// driver: it stays "sent".
	if c.unacknowledged {
		return
	}
	c.Status = "ok"
	var r struct {
		Cursor *struct {
			ID         int64      `bson:"id"`
			FirstBatch []bson.Raw `bson:"firstBatch"`
			NextBatch  []bson.Raw `bson:"nextBatch"`
		} `bson:"cursor"`
		N           *int32 `bson:"n"`
		NModified   *int32 `bson:"nModified"`
		WriteErrors []struct {
			Index  int    `bson:"index"`
			Code   int    `bson:"code"`
			ErrMsg string `bson:"errmsg"`
		} `bson:"writeErrors"`
	}
	if err := bson.Unmarshal(e.Reply, &r); err != nil {
		c.Failure = "reading the reply: " + err.Error()
		return
	}
	if r.Cursor != nil {
		c.Batch = ptr(len(r.Cursor.FirstBatch) + len(r.Cursor.NextBatch))
		c.CursorOpen = ptr(r.Cursor.ID != 0)
	}
	c.N, c.NModified = r.N, r.NModified
	for _, we := range r.WriteErrors {
		c.WriteErrors = append(c.WriteErrors, writeError{Index: we.Index, Code: we.Code, Msg: we.ErrMsg})
	}
}

func (m *monitor) failed(_ context.Context, e *event.CommandFailedEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i, ok := m.byID[e.RequestID]; ok {
		c := &m.commands[i]
		c.Status = "error"
		c.Failure = e.Failure
		// The event holds the error as text: "(CodeName) message" for a
		// server's error. The code itself is set by record when the
		// operation's error is this command's.
		if strings.HasPrefix(e.Failure, "(") {
			if j := strings.Index(e.Failure, ")"); j > 0 {
				c.CodeName = e.Failure[1:j]
			}
		}
	}
}

func (m *monitor) take() []command {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.commands
	m.commands = nil
	m.byID = map[int64]int{}
	if c == nil {
		c = []command{}
	}
	return c
}

func ptr[T any](v T) *T { return &v }

var (
	out    *json.Encoder
	seq    int
	failed bool
	mon    = &monitor{byID: map[int64]int{}}
)

// record prints an operation's line: its outcome from err, checked against
// the error code wanted (0: success), and the commands it sent.
func record(l line, err error, want int32) {
	seq++
	l.Seq = seq
	var got int32
	var ce mongo.CommandError
	var we mongo.WriteException
	switch {
	case err == nil:
		if l.Status == "" {
			l.Status = "ok"
		}
	case errors.As(err, &ce):
		l.Status = "error"
		l.Error = &opError{Code: ce.Code, CodeName: ce.Name, Message: ce.Message}
		got = ce.Code
	case errors.As(err, &we) && len(we.WriteErrors) > 0:
		l.Status = "error"
		e := we.WriteErrors[0]
		l.Error = &opError{Code: int32(e.Code), Message: e.Message}
		if e.Code == 11000 {
			l.Error.CodeName = "DuplicateKey" // a write error carries no codeName: this is its name
		}
		got = int32(e.Code)
	default:
		fmt.Fprintf(os.Stderr, "mongoclient: %s: %v\n", l.Op, err)
		os.Exit(1)
	}
	if got != want {
		fmt.Fprintf(os.Stderr, "mongoclient: %s: error code %d, want %d (%v)\n", l.Op, got, want, err)
		failed = true
	}
	l.Commands = mon.take()
	if ce.Code != 0 && len(l.Commands) > 0 && l.Commands[len(l.Commands)-1].Status == "error" {
		c := &l.Commands[len(l.Commands)-1]
		c.Code, c.CodeName = ptr(ce.Code), ce.Name
	}
	if err := out.Encode(l); err != nil {
		fmt.Fprintln(os.Stderr, "mongoclient:", err)
		os.Exit(1)
	}
}

// connect makes a client (one pooled connection, besides the monitor's) and
// records it: the line's commands are the ping that waits for the server to
// be known and a connection made, unless ping is false (then the first
// operation does that). Each connection opens with the driver's handshake
// (OP_QUERY isMaster, not seen by the command monitor).
func connect(ctx context.Context, name, uri string, ping bool, detail bson.M, opts ...*options.ClientOptions) *mongo.Client {
	o := options.Client().ApplyURI(uri).
		SetAppName("wirescope-mongoclient").
		SetMonitor(&event.CommandMonitor{Started: mon.started, Succeeded: mon.succeeded, Failed: mon.failed}).
		SetMaxPoolSize(1). // every command of a client on one connection
		SetRetryWrites(false).
		SetRetryReads(false).
		SetHeartbeatInterval(time.Minute) // one heartbeat in a run: the first
	c, err := mongo.Connect(ctx, append([]*options.ClientOptions{o}, opts...)...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mongoclient:", err)
		os.Exit(1)
	}
	if ping {
		err = c.Ping(ctx, nil)
	}
	record(line{Client: name, Op: "connect", Database: "admin", Detail: detail}, err, 0)
	return c
}

// disconnect closes a client and records it: the driver ends the sessions
// it used (endSessions; it ignores the answer).
func disconnect(ctx context.Context, name string, c *mongo.Client) {
	err := c.Disconnect(ctx)
	record(line{Client: name, Op: "disconnect", Database: "admin"}, err, 0)
}

func main() {
	uri := flag.String("uri", "mongodb://127.0.0.44:27017/?directConnection=true", "server URI")
	dbName := flag.String("db", "shop", "database")
	flag.Parse()
	out = json.NewEncoder(os.Stdout)
	out.SetEscapeHTML(false)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	client := connect(ctx, "main", *uri, true, bson.M{"uri": *uri})
	db := client.Database(*dbName)
	items := db.Collection("items")
	const cl = "main"
	base := func(op string) line {
		return line{Client: cl, Op: op, Database: *dbName, Collection: "items"}
	}

	// ping and hello, as commands
	var res bson.M
	err := db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Decode(&res)
	record(line{Client: cl, Op: "runCommand", Database: *dbName, Detail: bson.M{"ping": 1}}, err, 0)
	var hello struct {
		IsWritablePrimary bool     `bson:"isWritablePrimary"`
		MaxWireVersion    int32    `bson:"maxWireVersion"`
		Compression       []string `bson:"compression"`
	}
	err = db.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello)
	record(line{Client: cl, Op: "runCommand", Database: *dbName, Detail: bson.M{"hello": 1},
		Result: bson.M{"isWritablePrimary": hello.IsWritablePrimary, "maxWireVersion": hello.MaxWireVersion,
			"compression": hello.Compression}}, err, 0)

	// inserts
	_, err = items.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "widget"}, {Key: "qty", Value: 3}})
	l := base("insertOne")
	l.Detail = bson.M{"_id": 1}
	record(l, err, 0)

	docs := make([]any, 0, 10)
	for i := 2; i <= 11; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "name", Value: fmt.Sprintf("item-%02d", i)},
			{Key: "qty", Value: i % 5}, {Key: "tags", Value: bson.A{"bulk", fmt.Sprintf("t%d", i%3)}}})
	}
	mres, err := items.InsertMany(ctx, docs)
	l = base("insertMany")
	l.Detail = bson.M{"documents": len(docs)}
	if err == nil {
		l.Result = bson.M{"inserted": len(mres.InsertedIDs)}
	}
	record(l, err, 0)

	// find with a filter
	find := func(op string, filter bson.D, opts *options.FindOptions, detail bson.M) {
		cur, err := items.Find(ctx, filter, opts)
		n := 0
		if err == nil {
			for cur.Next(ctx) {
				n++
			}
			err = errors.Join(cur.Err(), cur.Close(ctx))
		}
		l := base(op)
		l.Detail = detail
		if err == nil {
			l.Result = bson.M{"documents": n}
		}
		record(l, err, 0)
	}
	find("find", bson.D{{Key: "qty", Value: bson.D{{Key: "$gte", Value: 3}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}),
		bson.M{"filter": "qty >= 3", "sort": "_id"})
	find("find", bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 2}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(2),
		bson.M{"filter": "_id >= 2 (10 documents)", "sort": "_id", "batchSize": 2})

	// aggregate
	cur, err := items.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "tags", Value: "bulk"}}}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$qty"}, {Key: "count", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
		{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}},
	})
	n := 0
	if err == nil {
		for cur.Next(ctx) {
			n++
		}
		err = errors.Join(cur.Err(), cur.Close(ctx))
	}
	l = base("aggregate")
	l.Detail = bson.M{"pipeline": "$match tags=bulk, $group by qty, $sort"}
	if err == nil {
		l.Result = bson.M{"documents": n}
	}
	record(l, err, 0)

	// updateOne, deleteMany, countDocuments
	ures, err := items.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "qty", Value: 4}}}})
	l = base("updateOne")
	l.Detail = bson.M{"filter": "_id = 1", "update": "$set qty 4"}
	if err == nil {
		l.Result = bson.M{"matched": ures.MatchedCount, "modified": ures.ModifiedCount}
	}
	record(l, err, 0)

	dres, err := items.DeleteMany(ctx, bson.D{{Key: "qty", Value: bson.D{{Key: "$lt", Value: 2}}}})
	l = base("deleteMany")
	l.Detail = bson.M{"filter": "qty < 2"}
	if err == nil {
		l.Result = bson.M{"deleted": dres.DeletedCount}
	}
	record(l, err, 0)

	count, err := items.CountDocuments(ctx, bson.D{})
	l = base("countDocuments")
	if err == nil {
		l.Result = bson.M{"count": count}
	}
	record(l, err, 0)

	// errors: a duplicate _id (a write error in an ok:1 answer), a command
	// the server does not know (ok:0)
	_, err = items.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "again"}})
	l = base("insertOne")
	l.Detail = bson.M{"_id": 1, "duplicate": true}
	record(l, err, 11000)

	err = db.RunCommand(ctx, bson.D{{Key: "nosuchcommand", Value: 1}}).Err()
	record(line{Client: cl, Op: "runCommand", Database: *dbName, Detail: bson.M{"nosuchcommand": 1}}, err, 59)

	// An unacknowledged insert (w:0) on a client of its own: the driver
	// sends it with moreToCome set and reads no answer.
	// No ping first: the insert is the connection's only command, the
	// client then closed. (A command after it on the same connection
	// would be answered by what FerretDB sends for the insert, moreToCome
	// or not: the driver reads it as the next command's answer.)
	uclient := connect(ctx, "unacknowledged", *uri, false, bson.M{"uri": *uri, "writeConcern": "w:0"},
		options.Client().SetWriteConcern(writeconcern.Unacknowledged()))
	_, err = uclient.Database(*dbName).Collection("items").InsertOne(ctx,
		bson.D{{Key: "_id", Value: 100}, {Key: "name", Value: "unacknowledged"}})
	l = line{Client: "unacknowledged", Op: "insertOne", Database: *dbName, Collection: "items",
		Detail: bson.M{"_id": 100, "writeConcern": "w:0"}, Status: "sent"}
	if errors.Is(err, mongo.ErrUnacknowledgedWrite) {
		err = nil
	}
	record(l, err, 0)
	// FerretDB drops a request whose connection closes before it is done:
	// give it time before the client goes.
	time.Sleep(300 * time.Millisecond)
	disconnect(ctx, "unacknowledged", uclient)

	// Did it land? Read back on the main client.
	var got bson.M
	err = items.FindOne(ctx, bson.D{{Key: "_id", Value: 100}}).Decode(&got)
	l = base("findOne")
	l.Detail = bson.M{"_id": 100}
	if errors.Is(err, mongo.ErrNoDocuments) {
		l.Result = bson.M{"found": false}
		err = nil
	} else if err == nil {
		l.Result = bson.M{"found": true}
	}
	record(l, err, 0)

	// A client offering compression; the server's hello answer says
	// which it takes (none: no compressed messages follow).
	cclient := connect(ctx, "compressed", *uri, true,
		bson.M{"uri": *uri, "compressors": []string{"snappy", "zlib", "zstd"}},
		options.Client().SetCompressors([]string{"snappy", "zlib", "zstd"}))
	cdb := cclient.Database(*dbName)
	err = cdb.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello)
	record(line{Client: "compressed", Op: "runCommand", Database: *dbName,
		Detail: bson.M{"hello": 1, "compressors_offered": []string{"snappy", "zlib", "zstd"}},
		Result: bson.M{"compression": hello.Compression}}, err, 0)
	err = cdb.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
	record(line{Client: "compressed", Op: "runCommand", Database: *dbName, Detail: bson.M{"ping": 1}}, err, 0)
	disconnect(ctx, "compressed", cclient)
	disconnect(ctx, "main", client)
	if failed {
		os.Exit(1)
	}
}
