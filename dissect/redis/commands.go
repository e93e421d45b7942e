package redis

import (
	"bytes"
	"strconv"
)

// containers are the commands whose first argument is a subcommand: the
// call's method is both words ("CONFIG GET", "CLIENT SETNAME").
var containers = map[string]bool{
	"ACL": true, "CLIENT": true, "CLUSTER": true, "COMMAND": true, "CONFIG": true, "DEBUG": true,
	"FUNCTION": true, "LATENCY": true, "MEMORY": true, "MODULE": true, "OBJECT": true, "PUBSUB": true,
	"SCRIPT": true, "SLOWLOG": true, "XGROUP": true, "XINFO": true,
}

// noKey are the commands without a key: the call's path stays empty
// (AUTH's argument is a password, SELECT's a database number).
var noKey = map[string]bool{
	"PING": true, "ECHO": true, "INFO": true, "AUTH": true, "HELLO": true, "SELECT": true, "QUIT": true,
	"RESET": true, "MULTI": true, "EXEC": true, "DISCARD": true, "UNWATCH": true, "SAVE": true,
	"BGSAVE": true, "BGREWRITEAOF": true, "LASTSAVE": true, "FLUSHALL": true, "FLUSHDB": true,
	"DBSIZE": true, "TIME": true, "ROLE": true, "MONITOR": true, "SYNC": true, "PSYNC": true,
	"REPLCONF": true, "REPLICAOF": true, "SLAVEOF": true, "SHUTDOWN": true, "SCAN": true,
	"RANDOMKEY": true, "WAIT": true, "WAITAOF": true, "FAILOVER": true, "SWAPDB": true, "LOLWUT": true,
	"READONLY": true, "READWRITE": true, "ASKING": true,
}

// keyAt returns the index (in args, the command's name at 0) of the
// command's first key, or -1.
func keyAt(cmd string, args []item, argc int64) int {
	if noKey[cmd] {
		return -1
	}
	switch cmd {
	case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
		if n, ok := intArg(args, 2); ok && n > 0 {
			return 3
		}
		return -1
	case "ZUNION", "ZINTER", "ZDIFF", "SINTERCARD", "ZINTERCARD", "LMPOP", "ZMPOP":
		return 2
	case "BLMPOP", "BZMPOP", "MIGRATE":
		return 3
	case "BITOP", "OBJECT ENCODING", "OBJECT FREQ", "OBJECT IDLETIME", "OBJECT REFCOUNT", "MEMORY USAGE":
		return 2
	case "XREAD", "XREADGROUP":
		for i := 1; i < len(args)-1; i++ {
			if bytes.EqualFold(args[i].data, []byte("STREAMS")) {
				return i + 1
			}
		}
		return -1
	}
	if containers[firstWord(cmd)] {
		switch firstWord(cmd) {
		case "XINFO", "XGROUP":
			return 2
		}
		return -1
	}
	if argc < 2 || known[cmd] == "" {
		// A command not known here (a module's, a typo): which argument
		// is a key cannot be told, and it may be anything.
		return -1
	}
	return 1
}

func firstWord(cmd string) string {
	for i := 0; i < len(cmd); i++ {
		if cmd[i] == ' ' {
			return cmd[:i]
		}
	}
	return cmd
}

func intArg(args []item, i int) (int64, bool) {
	if i >= len(args) {
		return 0, false
	}
	return parseInt(args[i].data)
}

// secretArgs marks the arguments that carry secrets (passwords), which a
// call never shows: AUTH's, HELLO's and MIGRATE's AUTH options, the
// password parameters of CONFIG SET, and ACL SETUSER's password rules.
func secretArgs(cmd string, args []item, secret []bool) {
	switch cmd {
	case "AUTH":
		for i := 1; i < len(args); i++ {
			secret[i] = true
		}
	case "HELLO", "MIGRATE":
		for i := 1; i < len(args); i++ {
			switch {
			case bytes.EqualFold(args[i].data, []byte("AUTH")) && cmd == "HELLO":
				// HELLO ver AUTH username password: both masked (the
				// username too: "AUTH" may start a password).
				markNext(secret, i, 2)
			case bytes.EqualFold(args[i].data, []byte("AUTH")):
				markNext(secret, i, 1)
			case bytes.EqualFold(args[i].data, []byte("AUTH2")):
				markNext(secret, i, 2)
			}
		}
	case "CONFIG SET":
		for i := 2; i+1 < len(args); i += 2 {
			switch string(bytes.ToLower(args[i].data)) {
			case "requirepass", "masterauth", "tls-key-file-pass", "tls-client-key-file-pass":
				secret[i+1] = true
			}
		}
	case "ACL SETUSER":
		for i := 3; i < len(args); i++ {
			if d := args[i].data; len(d) > 0 && (d[0] == '>' || d[0] == '<' || d[0] == '#' || d[0] == '!') {
				secret[i] = true
			}
		}
	}
}

func markNext(secret []bool, i, n int) {
	for j := i + 1; j <= i+n && j < len(secret); j++ {
		secret[j] = true
	}
}

// appendArg renders a command argument: as it is when it is a plain word,
// else quoted as redis-cli does.
func appendArg(dst []byte, a []byte) []byte {
	plain := len(a) > 0
	for _, c := range a {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\'' || c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return append(dst, a...)
	}
	dst = append(dst, '"')
	for _, c := range a {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, `\n`...)
		case c == '\r':
			dst = append(dst, `\r`...)
		case c == '\t':
			dst = append(dst, `\t`...)
		case c < 0x20 || c >= 0x7f:
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// upper returns the command name in upper case, without allocating for
// the names in known.
func upper(b []byte, scratch *[32]byte) string {
	if len(b) > len(scratch) {
		return string(bytes.ToUpper(b))
	}
	u := scratch[:len(b)]
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		u[i] = c
	}
	if s, ok := known[string(u)]; ok {
		return s
	}
	return string(u)
}

// known interns the commonest commands' names.
var known = func() map[string]string {
	m := map[string]string{}
	for _, c := range []string{
		"GET", "SET", "DEL", "MGET", "MSET", "INCR", "INCRBY", "DECR", "EXPIRE", "PEXPIRE", "TTL",
		"PTTL", "EXISTS", "SETEX", "SETNX", "GETSET", "GETDEL", "APPEND", "STRLEN", "HGET", "HSET",
		"HMGET", "HMSET", "HDEL", "HGETALL", "HINCRBY", "HEXISTS", "HLEN", "HKEYS", "HVALS", "LPUSH",
		"RPUSH", "LPOP", "RPOP", "LRANGE", "LLEN", "LINDEX", "LREM", "LTRIM", "BLPOP", "BRPOP",
		"SADD", "SREM", "SPOP", "SMEMBERS", "SISMEMBER", "SCARD", "ZADD", "ZREM", "ZRANGE",
		"ZRANGEBYSCORE", "ZREVRANGE", "ZSCORE", "ZINCRBY", "ZCARD", "ZRANK", "XADD", "XREAD",
		"XREADGROUP", "XACK", "XLEN", "PUBLISH", "SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE",
		"PUNSUBSCRIBE", "SSUBSCRIBE", "SUNSUBSCRIBE", "SPUBLISH", "PING", "ECHO", "INFO", "AUTH",
		"HELLO", "SELECT", "QUIT", "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "EVAL", "EVALSHA",
		"SCAN", "KEYS", "TYPE", "CONFIG", "CLIENT", "COMMAND", "CLUSTER", "RESET", "UNLINK",
		"INCRBYFLOAT", "SMOVE", "RENAME", "PERSIST", "EXPIREAT", "GETEX", "PSYNC", "SYNC", "REPLCONF",
		// The rest of the commands that take a key first.
		"EXPIRETIME", "PEXPIREAT", "PEXPIRETIME", "GETRANGE", "SETRANGE", "BITCOUNT", "SETBIT", "GETBIT",
		"BITPOS", "BITFIELD", "BITFIELD_RO", "PFADD", "PFCOUNT", "PFMERGE", "HSETNX", "HINCRBYFLOAT",
		"HSTRLEN", "HSCAN", "HRANDFIELD", "LINSERT", "LSET", "LPOS", "LMOVE", "BLMOVE", "RPOPLPUSH",
		"BRPOPLPUSH", "LPUSHX", "RPUSHX", "SUNION", "SINTER", "SDIFF", "SUNIONSTORE", "SINTERSTORE",
		"SDIFFSTORE", "SSCAN", "SRANDMEMBER", "SMISMEMBER", "ZREVRANGEBYSCORE", "ZRANGEBYLEX",
		"ZREVRANGEBYLEX", "ZREMRANGEBYSCORE", "ZREMRANGEBYRANK", "ZREMRANGEBYLEX", "ZCOUNT", "ZLEXCOUNT",
		"ZREVRANK", "ZPOPMIN", "ZPOPMAX", "BZPOPMIN", "BZPOPMAX", "ZSCAN", "ZMSCORE", "ZRANDMEMBER",
		"ZRANGESTORE", "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE", "XRANGE", "XREVRANGE", "XDEL", "XTRIM",
		"XCLAIM", "XAUTOCLAIM", "XPENDING", "XSETID", "GEOADD", "GEODIST", "GEOHASH", "GEOPOS", "GEORADIUS",
		"GEORADIUS_RO", "GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO", "GEOSEARCH", "GEOSEARCHSTORE", "DUMP",
		"RESTORE", "TOUCH", "COPY", "MOVE", "RENAMENX", "SORT", "SORT_RO", "MSETNX", "PSETEX", "DECRBY",
		"LCS", "SUBSTR", "SPUBLISH", "GETSET", "HMSET", "LREM",
	} {
		m[c] = c
	}
	return m
}()

// errorWord is the status of an error reply: its first word ("ERR",
// "WRONGTYPE", "MOVED"), "ERR" when it has none.
func errorWord(text []byte) string {
	end := bytes.IndexByte(text, ' ')
	if end < 0 {
		end = len(text)
	}
	w := text[:end]
	if len(w) == 0 || len(w) > 32 {
		return "ERR"
	}
	for _, c := range w {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return "ERR"
		}
	}
	if s, ok := errorWords[string(w)]; ok {
		return s
	}
	return string(w)
}

// serverErrors are the error words that report the server's trouble rather
// than the request's: out of memory, loading, busy with a script, a
// cluster or replica that cannot serve, persistence failing.
var serverErrors = map[string]bool{
	"OOM": true, "LOADING": true, "BUSY": true, "MASTERDOWN": true, "CLUSTERDOWN": true,
	"MISCONF": true, "READONLY": true, "TRYAGAIN": true, "NOREPLICAS": true, "NOTREADY": true,
	"UNKILLABLE": true,
}

var errorWords = func() map[string]string {
	m := map[string]string{}
	for _, w := range []string{"ERR", "WRONGTYPE", "NOAUTH", "WRONGPASS", "NOPERM", "MOVED", "ASK",
		"EXECABORT", "NOSCRIPT", "BUSYKEY", "NOPROTO", "NOGROUP", "UNBLOCKED"} {
		m[w] = w
	}
	for w := range serverErrors {
		m[w] = w
	}
	return m
}()

// itoa is strconv.Itoa for the small counts calls carry.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
