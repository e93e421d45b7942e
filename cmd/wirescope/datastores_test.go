package main

import (
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// dissectFile runs wirescope dissect on a capture and returns its calls;
// the JSON lines must hold none of secrets.
func dissectFile(t *testing.T, pcap string, secrets []string, extra ...string) []proto.Call {
	t.Helper()
	out, stderr, err := runCmd(t, append([]string{"dissect", pcap}, extra...)...)
	if err != nil {
		t.Fatalf("dissect %s: %v\n%s", pcap, err, stderr)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("%s: the secret %q is in the dissection", filepath.Base(pcap), s)
		}
	}
	return parseCalls(t, out)
}

// sameCounts compares two multisets of strings, reporting what differs.
func sameCounts(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := map[string]int{}, map[string]int{}
	for _, s := range got {
		g[s]++
	}
	for _, s := range want {
		w[s]++
	}
	if maps.Equal(g, w) {
		return
	}
	var diff []string
	for _, k := range slices.Sorted(maps.Keys(g)) {
		if g[k] != w[k] {
			diff = append(diff, k+": got "+strconv.Itoa(g[k])+", want "+strconv.Itoa(w[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(w)) {
		if _, ok := g[k]; !ok {
			diff = append(diff, k+": got 0, want "+strconv.Itoa(w[k]))
		}
	}
	t.Errorf("%s differ:\n  %s", what, strings.Join(diff, "\n  "))
}

// redisManifest is what scripts/record-redis.sh says its clients did.
type redisManifest struct {
	Secrets   []string `json:"secrets"`
	Scenarios []struct {
		Name        string `json:"name"`
		Pcap        string `json:"pcap"`
		Connections []struct {
			Commands []struct {
				Command string `json:"command"`
				Key     string `json:"key"`
				Status  string `json:"status"`
			} `json:"commands"`
		} `json:"connections"`
		CommandCounts map[string]int `json:"command_counts"`
		PubSub        []struct {
			Kind    string `json:"kind"`
			Pattern string `json:"pattern"`
			Channel string `json:"channel"`
			Count   int    `json:"count"`
		} `json:"pubsub"`
		Secrets []string `json:"secrets"`
	} `json:"scenarios"`
}

// pubsubCommands name a channel, not a key: the manifest's key is empty
// where the call's path is the channel.
var pubsubCommands = map[string]bool{"SUBSCRIBE": true, "PSUBSCRIBE": true, "SSUBSCRIBE": true, "UNSUBSCRIBE": true,
	"PUNSUBSCRIBE": true, "SUNSUBSCRIBE": true, "PUBLISH": true, "SPUBLISH": true}

// TestRedisRecorded records real redis-server traffic driven by redis-cli,
// redis-benchmark and raw inline commands (scripts/record-redis.sh) and
// checks wirescope's calls against what the clients did: every command
// with its first key and status (OK or the error word), per scenario;
// pushed pub/sub messages as one-way calls per channel; no password in
// the output.
func TestRedisRecorded(t *testing.T) {
	needRecording(t, "redis-server", "redis-cli", "redis-benchmark", "jq")
	var m redisManifest
	dir := recordManifest(t, "record-redis.sh", 4*time.Minute, &m)
	if len(m.Scenarios) < 6 {
		t.Fatalf("manifest.json has %d scenarios", len(m.Scenarios))
	}
	for _, s := range m.Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			calls := dissectFile(t, filepath.Join(dir, s.Pcap), append(slices.Clone(m.Secrets), s.Secrets...))
			var got, want, gotMethods, gotPush, wantPush []string
			for _, c := range calls {
				if c.Proto != "redis" {
					t.Errorf("a %s call", c.Proto)
					continue
				}
				if c.Error != "" {
					t.Errorf("%s %q: error %q", c.Method, c.Path, c.Error)
				}
				if c.OneWay {
					gotPush = append(gotPush, strings.ToLower(c.Method)+" "+c.Path+" "+extraString(c.Extra, "pattern"))
					continue
				}
				key := c.Path
				if pubsubCommands[c.Method] {
					key = ""
				}
				got = append(got, c.Method+" "+key+" "+c.Status)
				gotMethods = append(gotMethods, c.Method)
			}
			for _, conn := range s.Connections {
				for _, c := range conn.Commands {
					want = append(want, c.Command+" "+c.Key+" "+c.Status)
				}
			}
			for _, p := range s.PubSub {
				for range p.Count {
					wantPush = append(wantPush, p.Kind+" "+p.Channel+" "+p.Pattern)
				}
			}
			if len(want) > 0 {
				sameCounts(t, "commands", got, want)
			} else {
				// A load tool's run: its commands by name.
				var wantMethods []string
				for name, n := range s.CommandCounts {
					for range n {
						wantMethods = append(wantMethods, name)
					}
				}
				if len(wantMethods) == 0 {
					t.Fatal("the manifest lists no commands")
				}
				sameCounts(t, "commands by name", gotMethods, wantMethods)
			}
			sameCounts(t, "pushed messages", gotPush, wantPush)
		})
	}
}

func extraString(x proto.Extra, key string) string {
	s, _ := x.Get(key).(string)
	return s
}

// pgManifest is what scripts/record-postgres.sh says its clients did.
type pgManifest struct {
	Secrets   []string `json:"secrets"`
	Scenarios []struct {
		Name    string `json:"name"`
		Pcap    string `json:"pcap"`
		Servers []struct {
			Port int `json:"port"`
		} `json:"servers"`
		Counts struct {
			Notifications int `json:"notifications"`
		} `json:"counts"`
		Connections []struct {
			User            string `json:"user"`
			Database        string `json:"database"`
			ApplicationName string `json:"application_name"`
			Auth            string `json:"auth"`
			Encrypted       bool   `json:"encrypted"`
			Messages        []struct {
				Kind   string `json:"kind"`
				SQL    string `json:"sql"`
				Status string `json:"status"`
			} `json:"messages"`
		} `json:"connections"`
		Secrets []string `json:"secrets"`
	} `json:"scenarios"`
}

// TestPostgresRecorded records a real PostgreSQL driven by psql and
// pgbench (simple and extended protocol, prepared statements, COPY,
// errors, LISTEN/NOTIFY, SSL, password methods; scripts/record-postgres.sh)
// and checks wirescope's calls against what the clients did — each
// startup, query and execute with its SQL and its status — and against
// tshark's reading: as many simple queries and Executes, the same error
// SQLSTATEs. A connection that switched to TLS is a TLS handshake; no
// password is in the output.
func TestPostgresRecorded(t *testing.T) {
	needRecording(t, "psql", "pgbench", "jq")
	var m pgManifest
	dir := recordManifest(t, "record-postgres.sh", 4*time.Minute, &m)
	if len(m.Scenarios) < 4 {
		t.Fatalf("manifest.json has %d scenarios", len(m.Scenarios))
	}
	for _, s := range m.Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			pcap := filepath.Join(dir, s.Pcap)
			calls := dissectFile(t, pcap, append(slices.Clone(m.Secrets), s.Secrets...))
			var got, want, gotErrors []string
			handshakes, encrypted, notifications := 0, 0, 0
			startups := map[string]bool{}
			for _, c := range calls {
				switch {
				case c.Proto == "tls":
					handshakes++
					continue
				case c.Proto != "postgres":
					t.Errorf("a %s call", c.Proto)
					continue
				case c.Method == "NOTIFICATION":
					notifications++
					continue
				}
				if c.Error != "" {
					t.Errorf("%s %q: error %q", c.Method, c.Path, c.Error)
				}
				sql := c.Request.Body
				if c.Method == "STARTUP" {
					sql = ""
					startups[extraString(c.Extra, "user")+"@"+extraString(c.Extra, "database")+" "+extraString(c.Extra, "application_name")] = true
				}
				got = append(got, c.Method+" "+c.Status+" "+sql)
				if c.Status != "OK" {
					gotErrors = append(gotErrors, c.Status)
				}
			}
			for _, conn := range s.Connections {
				if conn.Encrypted {
					encrypted++
					continue
				}
				if !startups[conn.User+"@"+conn.Database+" "+conn.ApplicationName] {
					t.Errorf("no startup of %s@%s (%s)", conn.User, conn.Database, conn.ApplicationName)
				}
				for _, msg := range conn.Messages {
					want = append(want, msg.Kind+" "+msg.Status+" "+msg.SQL)
				}
			}
			sameCounts(t, "calls", got, want)
			if handshakes != encrypted {
				t.Errorf("%d TLS handshakes, %d connections switched to TLS", handshakes, encrypted)
			}
			if notifications != s.Counts.Notifications {
				t.Errorf("%d notifications, the manifest %d", notifications, s.Counts.Notifications)
			}
			// tshark's reading of the same capture.
			var decode []string
			for _, srv := range s.Servers {
				decode = append(decode, "-d", "tcp.port=="+strconv.Itoa(srv.Port)+",pgsql")
			}
			args := append([]string{"-r", pcap}, decode...)
			args = append(args, "-Y", "pgsql", "-T", "fields", "-e", "pgsql.type", "-e", "pgsql.code", "-E", "occurrence=a", "-E", "aggregator=|")
			out, err := exec.Command("tshark", args...).Output()
			if err != nil {
				t.Fatalf("tshark: %v", err)
			}
			var queries, executes int
			var tsharkErrors []string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				typesField, codes, _ := strings.Cut(line, "\t")
				for _, typ := range strings.Split(typesField, "|") {
					switch typ {
					case "Simple query":
						queries++
					case "Execute":
						executes++
					}
				}
				for _, code := range strings.Split(codes, "|") {
					// Notices carry codes too: successful (00) and
					// warning (01) classes are not errors.
					if code != "" && !strings.HasPrefix(code, "00") && !strings.HasPrefix(code, "01") {
						tsharkErrors = append(tsharkErrors, code)
					}
				}
			}
			var gotQueries, gotExecutes int
			for _, c := range calls {
				switch c.Method {
				case "QUERY":
					gotQueries++
				case "EXECUTE":
					gotExecutes++
				}
			}
			if gotQueries != queries || gotExecutes != executes {
				t.Errorf("%d queries and %d executes; tshark %d and %d", gotQueries, gotExecutes, queries, executes)
			}
			// A batch's error answers the Execute it failed and those the
			// server skipped after it: tshark sees one ErrorResponse.
			sameCounts(t, "error SQLSTATEs (distinct)", uniq(gotErrors), uniq(tsharkErrors))
		})
	}
}

func uniq(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// mysqlManifest is what scripts/record-mysql.sh says its clients did.
type mysqlManifest struct {
	Users []struct {
		User     string `json:"user"`
		Password string `json:"password"`
	} `json:"users"`
	Scenarios []struct {
		Name        string `json:"name"`
		Pcap        string `json:"pcap"`
		Connections []struct {
			User   string `json:"user"`
			Status string `json:"status"`
			Error  struct {
				Code int `json:"code"`
			} `json:"error"`
			Commands []struct {
				Command string `json:"command"`
				Query   string `json:"query"`
				Status  string `json:"status"`
				Error   struct {
					Code     int    `json:"code"`
					SQLState string `json:"sqlstate"`
				} `json:"error"`
				Results []struct {
					Type string `json:"type"`
					Rows int64  `json:"rows"`
				} `json:"results"`
			} `json:"commands"`
		} `json:"connections"`
		Load *struct {
			Commands map[string]int `json:"commands"`
		} `json:"load"`
	} `json:"scenarios"`
}

// TestMySQLRecorded records a real MariaDB driven by the mariadb client,
// mysqlslap and go-sql-driver/mysql (queries, multi-statement results, a
// stored procedure, prepared statements, errors, failed logins, ed25519;
// scripts/record-mysql.sh) and checks every call against what the
// clients did: each login with its user and outcome, each command with
// its statement, its status (the error number and SQLSTATE) and its rows;
// a load run's commands by name. No password is in the output.
func TestMySQLRecorded(t *testing.T) {
	needRecording(t, "mariadbd", "mariadb", "mysqlslap", "go", "jq")
	var m mysqlManifest
	dir := recordManifest(t, "record-mysql.sh", 6*time.Minute, &m)
	if len(m.Scenarios) < 5 {
		t.Fatalf("manifest.json has %d scenarios", len(m.Scenarios))
	}
	var secrets []string
	for _, u := range m.Users {
		secrets = append(secrets, u.Password)
	}
	for _, s := range m.Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			calls := dissectFile(t, filepath.Join(dir, s.Pcap), secrets)
			var got, want, gotMethods, wantMethods []string
			for _, c := range calls {
				if c.Proto != "mysql" {
					t.Errorf("a %s call", c.Proto)
					continue
				}
				if c.Error != "" {
					t.Errorf("%s %q: error %q", c.Method, c.Path, c.Error)
				}
				if c.Method != "CONNECT" {
					gotMethods = append(gotMethods, c.Method)
				}
				status := c.Status
				if status != "OK" && status != "" {
					status += " " + extraString(c.Extra, "sqlstate")
				}
				if c.Method == "CONNECT" {
					got = append(got, "CONNECT "+extraString(c.Extra, "user")+" "+strings.Fields(status + " x")[0])
					continue
				}
				rows := ""
				if v := c.Extra.Get("rows"); v != nil {
					rows = " rows=" + strconv.Itoa(extraInt(v))
				}
				got = append(got, c.Method+" "+status+rows+" "+c.Request.Body)
			}
			if s.Load != nil {
				for name, n := range s.Load.Commands {
					for range n {
						wantMethods = append(wantMethods, name)
					}
				}
				sameCounts(t, "commands by name", gotMethods, wantMethods)
				return
			}
			for _, conn := range s.Connections {
				status := "OK"
				if conn.Status != "ok" {
					status = strconv.Itoa(conn.Error.Code)
				}
				want = append(want, "CONNECT "+conn.User+" "+status)
				for _, c := range conn.Commands {
					status := ""
					switch c.Status {
					case "ok":
						status = "OK"
					case "error":
						status = strconv.Itoa(c.Error.Code) + " " + c.Error.SQLState
					}
					rows := ""
					var n int64
					sets := false
					for _, r := range c.Results {
						if r.Type == "resultset" {
							n += r.Rows
							sets = true
						}
					}
					if sets {
						rows = " rows=" + strconv.FormatInt(n, 10)
					}
					want = append(want, c.Command+" "+status+rows+" "+c.Query)
				}
			}
			sameCounts(t, "calls", got, want)
		})
	}
}

// mongoOp is one line of what scripts/record-mongo.sh's client did.
type mongoOp struct {
	Op         string `json:"op"`
	Collection string `json:"collection"`
	Commands   []struct {
		Command     string `json:"command"`
		Database    string `json:"database"`
		Collection  string `json:"collection"`
		Status      string `json:"status"`
		CodeName    string `json:"codeName"`
		Code        int64  `json:"code"`
		Batch       *int64 `json:"batch"`
		WriteErrors []struct {
			Code int64 `json:"code"`
		} `json:"write_errors"`
	} `json:"commands"`
}

// TestMongoDBRecorded records a MongoDB-wire server (FerretDB, built from
// the module proxy) driven by the official Go driver
// (scripts/record-mongo.sh) and checks every command the driver's monitor
// saw: its name, namespace, status (ok, or the codeName of the error or of
// the first write error) and batch size; a w:0 write is one-way. The
// driver's handshakes (OP_QUERY isMaster, unseen by its monitor) are
// checked apart.
func TestMongoDBRecorded(t *testing.T) {
	needRecording(t, "go", "jq")
	var ops []mongoOp
	dir := recordManifest(t, "record-mongo.sh", 6*time.Minute, &ops)
	calls := dissectFile(t, filepath.Join(dir, "mongo.pcap"), nil)
	var got, want []string
	handshakes, strays := 0, 0
	for _, c := range calls {
		switch {
		case c.Proto != "mongodb":
			t.Errorf("a %s call", c.Proto)
			continue
		case c.Extra.Get("opcode") == "OP_QUERY" && c.Method == "isMaster":
			handshakes++
			if c.Status != "ok" {
				t.Errorf("handshake: %s %q", c.Status, c.Error)
			}
			continue
		case c.Error == "no request":
			// FerretDB answers a moreToCome message, which nothing asked.
			strays++
			continue
		case c.Error != "":
			t.Errorf("%s %q: error %q", c.Method, c.Path, c.Error)
		}
		status := c.Status
		if c.OneWay {
			status = "sent"
		}
		batch := ""
		if v := c.Extra.Get("returned"); v != nil {
			batch = " batch=" + strconv.Itoa(extraInt(v))
		}
		got = append(got, c.Method+" "+c.Path+" "+status+batch)
	}
	sent := 0
	for _, op := range ops {
		for _, c := range op.Commands {
			ns := c.Database
			coll := c.Collection
			if coll == "" {
				coll = op.Collection
			}
			if coll != "" && c.Command != "ping" && c.Command != "endSessions" {
				ns += "." + coll
			}
			status := c.Status
			switch {
			case len(c.WriteErrors) > 0:
				status = mongoCodeNames[c.WriteErrors[0].Code]
			case status != "ok" && status != "sent" && c.CodeName != "":
				status = c.CodeName
			}
			if status == "sent" {
				sent++
			}
			batch := ""
			if c.Batch != nil {
				batch = " batch=" + strconv.FormatInt(*c.Batch, 10)
			}
			want = append(want, c.Command+" "+ns+" "+status+batch)
		}
	}
	sameCounts(t, "commands", got, want)
	if handshakes == 0 || strays > sent {
		t.Errorf("%d handshakes, %d replies to nothing for %d w:0 writes", handshakes, strays, sent)
	}
}

var mongoCodeNames = map[int64]string{11000: "DuplicateKey", 59: "CommandNotFound", 26: "NamespaceNotFound"}
