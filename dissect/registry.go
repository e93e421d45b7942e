package dissect

import (
	"slices"

	"github.com/wirescope/wirescope/dissect/amqp"
	"github.com/wirescope/wirescope/dissect/diameter"
	"github.com/wirescope/wirescope/dissect/dns"
	"github.com/wirescope/wirescope/dissect/graphql"
	"github.com/wirescope/wirescope/dissect/grpc"
	"github.com/wirescope/wirescope/dissect/http1"
	"github.com/wirescope/wirescope/dissect/http2"
	"github.com/wirescope/wirescope/dissect/icmp"
	"github.com/wirescope/wirescope/dissect/kafka"
	"github.com/wirescope/wirescope/dissect/ldap"
	"github.com/wirescope/wirescope/dissect/mongodb"
	"github.com/wirescope/wirescope/dissect/mqtt"
	"github.com/wirescope/wirescope/dissect/mysql"
	"github.com/wirescope/wirescope/dissect/nats"
	"github.com/wirescope/wirescope/dissect/postgres"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/radius"
	"github.com/wirescope/wirescope/dissect/redis"
	"github.com/wirescope/wirescope/dissect/tls"
	"github.com/wirescope/wirescope/dissect/websocket"
)

// Call is the record a dissection produces; see proto.Call.
type Call = proto.Call

// all is every protocol wirescope dissects, in the order they are asked
// about a flow when no port hints otherwise. Adding a protocol is adding
// its package and a line here.
var all = []proto.Protocol{
	http1.Protocol{},
	dns.Protocol{},
	websocket.Protocol{},
	http2.Protocol{},
	grpc.Protocol{},
	graphql.Protocol{},
	tls.Protocol{},
	nats.Protocol{}, // before redis, whose inline commands include INFO: a NATS server starts with INFO {…}
	redis.Protocol{},
	postgres.Protocol{},
	mysql.Protocol{},
	mongodb.Protocol{},
	mqtt.Protocol{},
	kafka.Protocol{},
	amqp.Protocol{},
	ldap.Protocol{},
	diameter.Protocol{},
	icmp.Protocol{}, // fed ICMP packets by the engine, not detected
	radius.Protocol{},
}

// The rest of wirescope (the index, the tools) reads what each protocol
// says of its calls from proto's registry.
func init() { proto.Register(all...) }

// All returns every protocol wirescope dissects, in the order they are asked
// about a flow when no port hints otherwise.
func All() []proto.Protocol { return slices.Clone(all) }
