package radius

import "strconv"

// kind says how an attribute's value is read and shown.
type kind uint8

const (
	kOctets kind = iota // hex, cut to maxHex bytes
	kText               // UTF-8 text, quoted
	kInt                // 32-bit unsigned integer
	kEnum               // 32-bit integer named by its enumeration
	kIP                 // IPv4 address
	kIPv6               // IPv6 address
	kPrefix             // IPv6 prefix: reserved byte, length, prefix
	kDate               // seconds since 1970
	kTagInt             // tag byte, then a 24-bit integer (Tunnel-Type)
	kSecret             // never shown
	kEAP                // EAP-Message: its code and type only
	kVSA                // Vendor-Specific
)

// attrDef names a standard attribute and says how to read it.
type attrDef struct {
	name  string
	kind  kind
	enums map[uint32]string
}

// Attribute numbers the dissector reads for itself.
const (
	attrUserName             = 1
	attrUserPassword         = 2
	attrCHAPPassword         = 3
	attrNASIPAddress         = 4
	attrNASPort              = 5
	attrServiceType          = 6
	attrFramedIPAddress      = 8
	attrReplyMessage         = 18
	attrClass                = 25
	attrVendorSpecific       = 26
	attrSessionTimeout       = 27
	attrCalledStationID      = 30
	attrCallingStationID     = 31
	attrNASIdentifier        = 32
	attrAcctStatusType       = 40
	attrAcctSessionID        = 44
	attrNASPortType          = 61
	attrTunnelPassword       = 69
	attrEAPMessage           = 79
	attrMessageAuthenticator = 80
	attrErrorCause           = 101
)

var serviceTypes = map[uint32]string{1: "Login-User", 2: "Framed-User", 3: "Callback-Login-User", 4: "Callback-Framed-User",
	5: "Outbound-User", 6: "Administrative-User", 7: "NAS-Prompt-User", 8: "Authenticate-Only", 9: "Callback-NAS-Prompt",
	10: "Call-Check", 11: "Callback-Administrative", 12: "Voice", 13: "Fax", 14: "Modem-Relay", 15: "IAPP-Register",
	16: "IAPP-AP-Check", 17: "Authorize-Only", 18: "Framed-Management"}

var framedProtocols = map[uint32]string{1: "PPP", 2: "SLIP", 3: "ARAP", 4: "Gandalf-SLML", 5: "Xylogics-IPX-SLIP",
	6: "X.75-Synchronous", 7: "GPRS-PDP-Context"}

var nasPortTypes = map[uint32]string{0: "Async", 1: "Sync", 2: "ISDN", 3: "ISDN-V120", 4: "ISDN-V110", 5: "Virtual",
	6: "PIAFS", 7: "HDLC-Clear-Channel", 8: "X.25", 9: "X.75", 10: "G.3-Fax", 11: "SDSL", 12: "ADSL-CAP", 13: "ADSL-DMT",
	14: "IDSL", 15: "Ethernet", 16: "xDSL", 17: "Cable", 18: "Wireless-Other", 19: "Wireless-802.11", 20: "Token-Ring",
	21: "FDDI", 22: "Wireless-CDMA2000", 23: "Wireless-UMTS", 24: "Wireless-1X-EV", 25: "IAPP", 26: "FTTP",
	27: "Wireless-802.16", 28: "Wireless-802.20", 29: "Wireless-802.22", 30: "PPPoA", 31: "PPPoEoA", 32: "PPPoEoE",
	33: "PPPoEoVLAN", 34: "PPPoEoQinQ", 35: "xPON", 36: "Wireless-XGP"}

var acctStatusTypes = map[uint32]string{1: "Start", 2: "Stop", 3: "Interim-Update", 7: "Accounting-On",
	8: "Accounting-Off", 9: "Tunnel-Start", 10: "Tunnel-Stop", 11: "Tunnel-Reject", 12: "Tunnel-Link-Start",
	13: "Tunnel-Link-Stop", 14: "Tunnel-Link-Reject", 15: "Failed"}

var acctAuthentics = map[uint32]string{1: "RADIUS", 2: "Local", 3: "Remote", 4: "Diameter"}

var terminateCauses = map[uint32]string{1: "User-Request", 2: "Lost-Carrier", 3: "Lost-Service", 4: "Idle-Timeout",
	5: "Session-Timeout", 6: "Admin-Reset", 7: "Admin-Reboot", 8: "Port-Error", 9: "NAS-Error", 10: "NAS-Request",
	11: "NAS-Reboot", 12: "Port-Unneeded", 13: "Port-Preempted", 14: "Port-Suspended", 15: "Service-Unavailable",
	16: "Callback", 17: "User-Error", 18: "Host-Request"}

var terminationActions = map[uint32]string{0: "Default", 1: "RADIUS-Request"}

var tunnelTypes = map[uint32]string{1: "PPTP", 2: "L2F", 3: "L2TP", 4: "ATMP", 5: "VTP", 6: "AH", 7: "IP-IP",
	8: "MIN-IP-IP", 9: "ESP", 10: "GRE", 11: "DVS", 12: "IP-in-IP", 13: "VLAN"}

var tunnelMediumTypes = map[uint32]string{1: "IPv4", 2: "IPv6", 3: "NSAP", 4: "HDLC", 5: "BBN-1822", 6: "IEEE-802",
	7: "E.163", 8: "E.164", 9: "F.69", 10: "X.121", 11: "IPX", 12: "Appletalk", 13: "DecNet-IV", 14: "Banyan-Vines",
	15: "E.164-NSAP"}

// errorCauses are RFC 5176's Error-Cause values, which a CoA-NAK or
// Disconnect-NAK carries.
var errorCauses = map[uint32]string{201: "Residual-Session-Context-Removed", 202: "Invalid-EAP-Packet",
	401: "Unsupported-Attribute", 402: "Missing-Attribute", 403: "NAS-Identification-Mismatch", 404: "Invalid-Request",
	405: "Unsupported-Service", 406: "Unsupported-Extension", 407: "Invalid-Attribute-Value",
	501: "Administratively-Prohibited", 502: "Request-Not-Routable", 503: "Session-Context-Not-Found",
	504: "Session-Context-Not-Removable", 505: "Other-Proxy-Processing-Error", 506: "Resources-Unavailable",
	507: "Request-Initiated", 508: "Multiple-Session-Selection-Unsupported"}

// attrs are the standard attributes by number (RFC 2865, 2866, 2867, 2868,
// 2869, 3162, 4072, 4675, 5176, 6911), as FreeRADIUS's dictionary names
// them.
var attrs = [256]attrDef{
	1: {"User-Name", kText, nil}, 2: {"User-Password", kSecret, nil}, 3: {"CHAP-Password", kSecret, nil},
	4: {"NAS-IP-Address", kIP, nil}, 5: {"NAS-Port", kInt, nil}, 6: {"Service-Type", kEnum, serviceTypes},
	7: {"Framed-Protocol", kEnum, framedProtocols}, 8: {"Framed-IP-Address", kIP, nil}, 9: {"Framed-IP-Netmask", kIP, nil},
	10: {"Framed-Routing", kInt, nil}, 11: {"Filter-Id", kText, nil}, 12: {"Framed-MTU", kInt, nil},
	13: {"Framed-Compression", kInt, nil}, 14: {"Login-IP-Host", kIP, nil}, 15: {"Login-Service", kInt, nil},
	16: {"Login-TCP-Port", kInt, nil}, 18: {"Reply-Message", kText, nil}, 19: {"Callback-Number", kText, nil},
	20: {"Callback-Id", kText, nil}, 22: {"Framed-Route", kText, nil}, 23: {"Framed-IPX-Network", kInt, nil},
	24: {"State", kOctets, nil}, 25: {"Class", kOctets, nil}, 26: {"Vendor-Specific", kVSA, nil},
	27: {"Session-Timeout", kInt, nil}, 28: {"Idle-Timeout", kInt, nil},
	29: {"Termination-Action", kEnum, terminationActions}, 30: {"Called-Station-Id", kText, nil},
	31: {"Calling-Station-Id", kText, nil}, 32: {"NAS-Identifier", kText, nil}, 33: {"Proxy-State", kOctets, nil},
	34: {"Login-LAT-Service", kText, nil}, 35: {"Login-LAT-Node", kText, nil}, 36: {"Login-LAT-Group", kOctets, nil},
	37: {"Framed-AppleTalk-Link", kInt, nil}, 38: {"Framed-AppleTalk-Network", kInt, nil},
	39: {"Framed-AppleTalk-Zone", kText, nil}, 40: {"Acct-Status-Type", kEnum, acctStatusTypes},
	41: {"Acct-Delay-Time", kInt, nil}, 42: {"Acct-Input-Octets", kInt, nil}, 43: {"Acct-Output-Octets", kInt, nil},
	44: {"Acct-Session-Id", kText, nil}, 45: {"Acct-Authentic", kEnum, acctAuthentics},
	46: {"Acct-Session-Time", kInt, nil}, 47: {"Acct-Input-Packets", kInt, nil}, 48: {"Acct-Output-Packets", kInt, nil},
	49: {"Acct-Terminate-Cause", kEnum, terminateCauses}, 50: {"Acct-Multi-Session-Id", kText, nil},
	51: {"Acct-Link-Count", kInt, nil}, 52: {"Acct-Input-Gigawords", kInt, nil}, 53: {"Acct-Output-Gigawords", kInt, nil},
	55: {"Event-Timestamp", kDate, nil}, 56: {"Egress-VLANID", kInt, nil}, 57: {"Ingress-Filters", kInt, nil},
	58: {"Egress-VLAN-Name", kText, nil}, 59: {"User-Priority-Table", kOctets, nil}, 60: {"CHAP-Challenge", kOctets, nil},
	61: {"NAS-Port-Type", kEnum, nasPortTypes}, 62: {"Port-Limit", kInt, nil}, 63: {"Login-LAT-Port", kText, nil},
	64: {"Tunnel-Type", kTagInt, tunnelTypes}, 65: {"Tunnel-Medium-Type", kTagInt, tunnelMediumTypes},
	66: {"Tunnel-Client-Endpoint", kText, nil}, 67: {"Tunnel-Server-Endpoint", kText, nil},
	68: {"Acct-Tunnel-Connection", kText, nil}, 69: {"Tunnel-Password", kSecret, nil},
	70: {"ARAP-Password", kSecret, nil}, 71: {"ARAP-Features", kOctets, nil}, 72: {"ARAP-Zone-Access", kInt, nil},
	73: {"ARAP-Security", kInt, nil}, 74: {"ARAP-Security-Data", kText, nil}, 75: {"Password-Retry", kInt, nil},
	76: {"Prompt", kInt, nil}, 77: {"Connect-Info", kText, nil}, 78: {"Configuration-Token", kText, nil},
	79: {"EAP-Message", kEAP, nil}, 80: {"Message-Authenticator", kSecret, nil},
	81: {"Tunnel-Private-Group-Id", kText, nil}, 82: {"Tunnel-Assignment-Id", kText, nil},
	83: {"Tunnel-Preference", kTagInt, nil}, 84: {"ARAP-Challenge-Response", kSecret, nil},
	85: {"Acct-Interim-Interval", kInt, nil}, 86: {"Acct-Tunnel-Packets-Lost", kInt, nil},
	87: {"NAS-Port-Id", kText, nil}, 88: {"Framed-Pool", kText, nil}, 89: {"Chargeable-User-Identity", kOctets, nil},
	90: {"Tunnel-Client-Auth-Id", kText, nil}, 91: {"Tunnel-Server-Auth-Id", kText, nil},
	95: {"NAS-IPv6-Address", kIPv6, nil}, 96: {"Framed-Interface-Id", kOctets, nil},
	97: {"Framed-IPv6-Prefix", kPrefix, nil}, 98: {"Login-IPv6-Host", kIPv6, nil}, 99: {"Framed-IPv6-Route", kText, nil},
	100: {"Framed-IPv6-Pool", kText, nil}, 101: {"Error-Cause", kEnum, errorCauses},
	123: {"Delegated-IPv6-Prefix", kPrefix, nil}, 168: {"Framed-IPv6-Address", kIPv6, nil},
}

// vendorNames are the vendors whose attributes are named.
var vendorNames = map[uint32]string{9: "Cisco", 311: "Microsoft", 2636: "Juniper", 14122: "WISPr", 14988: "Mikrotik"}

// vendorAttrs names vendor attributes, by vendor then type. Microsoft's
// MS-CHAP responses, changed passwords and MPPE keys are secrets (RFC 2548).
var vendorAttrs = map[uint32]map[byte]attrDef{
	9: {1: {"Cisco-AVPair", kText, nil}},
	311: {1: {"MS-CHAP-Response", kSecret, nil}, 2: {"MS-CHAP-Error", kText, nil}, 3: {"MS-CHAP-CPW-1", kSecret, nil},
		4: {"MS-CHAP-CPW-2", kSecret, nil}, 5: {"MS-CHAP-LM-Enc-PW", kSecret, nil}, 6: {"MS-CHAP-NT-Enc-PW", kSecret, nil},
		7: {"MS-MPPE-Encryption-Policy", kInt, nil}, 8: {"MS-MPPE-Encryption-Types", kInt, nil},
		10: {"MS-CHAP-Domain", kText, nil}, 11: {"MS-CHAP-Challenge", kOctets, nil}, 12: {"MS-CHAP-MPPE-Keys", kSecret, nil},
		16: {"MS-MPPE-Send-Key", kSecret, nil}, 17: {"MS-MPPE-Recv-Key", kSecret, nil}, 25: {"MS-CHAP2-Response", kSecret, nil},
		26: {"MS-CHAP2-Success", kOctets, nil}, 27: {"MS-CHAP2-CPW", kSecret, nil}},
	14122: {1: {"WISPr-Location-ID", kText, nil}, 2: {"WISPr-Location-Name", kText, nil},
		4: {"WISPr-Redirection-URL", kText, nil}, 7: {"WISPr-Bandwidth-Max-Up", kInt, nil},
		8: {"WISPr-Bandwidth-Max-Down", kInt, nil}},
	14988: {1: {"Mikrotik-Recv-Limit", kInt, nil}, 2: {"Mikrotik-Xmit-Limit", kInt, nil},
		3: {"Mikrotik-Group", kText, nil}, 8: {"Mikrotik-Rate-Limit", kText, nil}},
}

// vendorAttr returns the definition of vendor's attribute typ: named when
// known, else "Attr-26.VENDOR.TYPE" shown as hex.
func vendorAttr(vendor uint32, typ byte) attrDef {
	if d, ok := vendorAttrs[vendor][typ]; ok {
		return d
	}
	return attrDef{name: "Attr-26." + strconv.FormatUint(uint64(vendor), 10) + "." + strconv.Itoa(int(typ)), kind: kOctets}
}

// stdAttr returns the definition of standard attribute typ: "Attr-N"
// shown as hex when it has no name.
func stdAttr(typ byte) attrDef {
	if d := attrs[typ]; d.name != "" {
		return d
	}
	return attrDef{name: "Attr-" + strconv.Itoa(int(typ)), kind: kOctets}
}

// eapCodes and eapTypes name an EAP packet's code and method (RFC 3748 and
// IANA's registry).
var eapCodes = [...]string{1: "Request", 2: "Response", 3: "Success", 4: "Failure", 5: "Initiate", 6: "Finish"}

var eapTypes = map[byte]string{1: "Identity", 2: "Notification", 3: "Nak", 4: "MD5-Challenge", 5: "OTP", 6: "GTC",
	13: "EAP-TLS", 17: "LEAP", 18: "EAP-SIM", 21: "EAP-TTLS", 23: "EAP-AKA", 25: "PEAP", 26: "EAP-MSCHAPv2",
	29: "EAP-MSCHAPv2", 43: "EAP-FAST", 47: "EAP-PSK", 48: "EAP-SAKE", 49: "EAP-IKEv2", 50: "EAP-AKA'", 51: "EAP-GPSK",
	52: "EAP-PWD", 53: "EAP-EKE", 55: "TEAP", 254: "Expanded", 255: "Experimental"}

// eapName names an EAP packet by its first bytes: "EAP-Response/Identity",
// "EAP-Request/EAP-TLS", "EAP-Success"; "EAP" when too short to say.
func eapName(head []byte) string {
	if len(head) < 1 {
		return "EAP"
	}
	code := "Code-" + strconv.Itoa(int(head[0]))
	if int(head[0]) < len(eapCodes) && eapCodes[head[0]] != "" {
		code = eapCodes[head[0]]
	}
	name := "EAP-" + code
	if head[0] != 1 && head[0] != 2 || len(head) < 5 {
		return name
	}
	t, ok := eapTypes[head[4]]
	if !ok {
		t = "Type-" + strconv.Itoa(int(head[4]))
	}
	return name + "/" + t
}
