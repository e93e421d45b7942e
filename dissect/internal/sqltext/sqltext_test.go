package sqltext

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, c := range []struct {
		d         Dialect
		sql, want string
	}{
		{PostgreSQL, "SELECT * FROM t WHERE id = 42", "SELECT * FROM t WHERE id = ?"},
		{PostgreSQL, "SELECT 'it''s', \"Col\" FROM t", "SELECT ?, \"Col\" FROM t"},
		{PostgreSQL, "SELECT 'a\\' FROM t", "SELECT ? FROM t"},
		{PostgreSQL, "SELECT $1, $$x$$", "SELECT $1, ?"},
		{MySQL, "SELECT * FROM `order` WHERE name = \"bob\" AND id IN (1,2,3) # trailing", "SELECT * FROM `order` WHERE name = ? AND id IN (?)"},
		{MySQL, "SELECT 'a\\'b', c FROM t", "SELECT ?, c FROM t"},
		{MySQL, "INSERT INTO t VALUES (?, ?)", "INSERT INTO t VALUES (?)"},
		{MySQL, "SELECT $x FROM t", "SELECT $x FROM t"},
	} {
		if got := Normalize([]byte(c.sql), c.d); got != c.want {
			t.Errorf("%q: %q, want %q", c.sql, got, c.want)
		}
	}
	long := "SELECT " + strings.Repeat("col, ", 1000) + "x FROM t"
	if got := Normalize([]byte(long), MySQL); len(got) != MaxLen+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("long statement: %d bytes", len(got))
	}
}

func FuzzNormalize(f *testing.F) {
	f.Add("SELECT 'x', $1, $$y$$ -- c\n/* d */ FROM t WHERE a IN (1, 2)", false)
	f.Add("SELECT `a`, \"b\", 'c\\'' # x", true)
	f.Fuzz(func(t *testing.T, sql string, mysql bool) {
		d := PostgreSQL
		if mysql {
			d = MySQL
		}
		if got := Normalize([]byte(sql), d); len(got) > MaxLen+len("…") {
			t.Fatalf("%d bytes", len(got))
		}
		if got := RedactSecrets([]byte(sql), d); len(got) > len(sql)+len(Mask)*len(sql) {
			t.Fatalf("%d bytes from %d", len(got), len(sql))
		}
	})
}

func TestRedactSecrets(t *testing.T) {
	for _, c := range []struct {
		d         Dialect
		sql, want string
	}{
		{PostgreSQL, "ALTER USER app PASSWORD 'hunter2'", "ALTER USER app PASSWORD '[redacted]'"},
		{PostgreSQL, "CREATE ROLE r LOGIN password 'it''s' VALID UNTIL 'infinity'", "CREATE ROLE r LOGIN password '[redacted]' VALID UNTIL 'infinity'"},
		{PostgreSQL, "SELECT 'PASSWORD ''x''' FROM t", "SELECT 'PASSWORD ''x''' FROM t"},
		{PostgreSQL, "SELECT password FROM users WHERE name = 'bob'", "SELECT password FROM users WHERE name = 'bob'"},
		{MySQL, "CREATE USER 'app'@'%' IDENTIFIED BY \"s3cret\"", "CREATE USER 'app'@'%' IDENTIFIED BY \"[redacted]\""},
		{MySQL, "SET PASSWORD FOR 'app' = PASSWORD('s3cret')", "SET PASSWORD FOR 'app' = PASSWORD('[redacted]')"},
		{MySQL, "ALTER USER app IDENTIFIED WITH mysql_native_password BY 'x'", "ALTER USER app IDENTIFIED WITH mysql_native_password BY '[redacted]'"},
		{MySQL, "CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('x')", "CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('[redacted]')"},
		{MySQL, "GRANT ALL ON *.* TO u IDENTIFIED AS 'hash'", "GRANT ALL ON *.* TO u IDENTIFIED AS '[redacted]'"},
		{MySQL, "SELECT 1", "SELECT 1"},
	} {
		if got := string(RedactSecrets([]byte(c.sql), c.d)); got != c.want {
			t.Errorf("%q: %q, want %q", c.sql, got, c.want)
		}
	}
}
