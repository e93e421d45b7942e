package dissect

import (
	"github.com/wirescope/wirescope/dissect/dns"
	"github.com/wirescope/wirescope/dissect/http1"
	"github.com/wirescope/wirescope/dissect/proto"
)

// Call is the record a dissection produces; see proto.Call.
type Call = proto.Call

// All returns every protocol wirescope dissects, in the order they are asked
// about a flow when no port hints otherwise.
func All() []proto.Protocol {
	return []proto.Protocol{
		http1.Protocol{},
		dns.Protocol{},
	}
}
