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
	})
}
