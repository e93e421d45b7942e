package diameter

import "strconv"

// command is a command code's abbreviations, request and answer.
type command struct{ req, ans string }

// commands are the command codes of the base protocol (RFC 6733), its
// accounting, Credit-Control (RFC 4006), NASREQ (RFC 7155), EAP (RFC
// 4072) and the 3GPP interfaces most seen (S6a/S6d TS 29.272, Cx/Dx and Sh
// TS 29.229/29.329; Gx and Rx use CCR, AAR, RAR, STR and ASR).
var commands = map[uint32]command{
	257: {"CER", "CEA"}, 258: {"RAR", "RAA"}, 271: {"ACR", "ACA"}, 274: {"ASR", "ASA"}, 275: {"STR", "STA"},
	280: {"DWR", "DWA"}, 282: {"DPR", "DPA"},
	265: {"AAR", "AAA"}, 268: {"DER", "DEA"}, 272: {"CCR", "CCA"},
	300: {"UAR", "UAA"}, 301: {"SAR", "SAA"}, 302: {"LIR", "LIA"}, 303: {"MAR", "MAA"}, 304: {"RTR", "RTA"},
	305: {"PPR", "PPA"}, 306: {"UDR", "UDA"}, 307: {"PUR", "PUA"}, 308: {"SNR", "SNA"}, 309: {"PNR", "PNA"},
	316: {"ULR", "ULA"}, 317: {"CLR", "CLA"}, 318: {"AIR", "AIA"}, 319: {"IDR", "IDA"}, 320: {"DSR", "DSA"},
	321: {"PUR", "PUA"}, 322: {"RSR", "RSA"}, 323: {"NOR", "NOA"}, 324: {"ECR", "ECA"},
}

// commandName names a command: its request's or answer's abbreviation,
// "cmd-<code>" when unknown.
func commandName(code uint32, request bool) string {
	if c, ok := commands[code]; ok {
		if request {
			return c.req
		}
		return c.ans
	}
	return "cmd-" + strconv.FormatUint(uint64(code), 10)
}

// applications names Application-Ids (IANA's registry, 3GPP's vendor
// applications).
var applications = map[uint32]string{
	0: "Diameter Common Messages", 1: "NASREQ", 2: "Mobile IPv4", 3: "Diameter Base Accounting", 4: "Credit-Control",
	5: "EAP", 6: "SIP", 7: "Mobile IPv6 IKE", 8: "Mobile IPv6 Auth", 9: "QoS", 0xffffffff: "Relay",
	16777216: "3GPP Cx", 16777217: "3GPP Sh", 16777236: "3GPP Rx", 16777238: "3GPP Gx", 16777251: "3GPP S6a",
	16777252: "3GPP S13", 16777255: "3GPP SLg", 16777265: "3GPP SWx", 16777266: "3GPP Gxx", 16777267: "3GPP S9",
	16777272: "3GPP S6b", 16777302: "3GPP Sy", 16777308: "3GPP S6t", 16777312: "3GPP S6c", 16777313: "3GPP SGd",
}

// appName names an Application-Id: "Credit-Control", "application 42".
func appName(id uint32) string {
	if n, ok := applications[id]; ok {
		return n
	}
	return "application " + strconv.FormatUint(uint64(id), 10)
}

// resultNames are the Result-Codes of RFC 6733 and RFC 4006.
var resultNames = map[uint32]string{
	1001: "DIAMETER_MULTI_ROUND_AUTH",
	2001: "DIAMETER_SUCCESS", 2002: "DIAMETER_LIMITED_SUCCESS",
	3001: "DIAMETER_COMMAND_UNSUPPORTED", 3002: "DIAMETER_UNABLE_TO_DELIVER", 3003: "DIAMETER_REALM_NOT_SERVED",
	3004: "DIAMETER_TOO_BUSY", 3005: "DIAMETER_LOOP_DETECTED", 3006: "DIAMETER_REDIRECT_INDICATION",
	3007: "DIAMETER_APPLICATION_UNSUPPORTED", 3008: "DIAMETER_INVALID_HDR_BITS", 3009: "DIAMETER_INVALID_AVP_BITS",
	3010: "DIAMETER_UNKNOWN_PEER",
	4001: "DIAMETER_AUTHENTICATION_REJECTED", 4002: "DIAMETER_OUT_OF_SPACE", 4003: "ELECTION_LOST",
	4010: "DIAMETER_END_USER_SERVICE_DENIED", 4011: "DIAMETER_CREDIT_CONTROL_NOT_APPLICABLE",
	4012: "DIAMETER_CREDIT_LIMIT_REACHED",
	5001: "DIAMETER_AVP_UNSUPPORTED", 5002: "DIAMETER_UNKNOWN_SESSION_ID", 5003: "DIAMETER_AUTHORIZATION_REJECTED",
	5004: "DIAMETER_INVALID_AVP_VALUE", 5005: "DIAMETER_MISSING_AVP", 5006: "DIAMETER_RESOURCES_EXCEEDED",
	5007: "DIAMETER_CONTRADICTING_AVPS", 5008: "DIAMETER_AVP_NOT_ALLOWED", 5009: "DIAMETER_AVP_OCCURS_TOO_MANY_TIMES",
	5010: "DIAMETER_NO_COMMON_APPLICATION", 5011: "DIAMETER_UNSUPPORTED_VERSION", 5012: "DIAMETER_UNABLE_TO_COMPLY",
	5013: "DIAMETER_INVALID_BIT_IN_HEADER", 5014: "DIAMETER_INVALID_AVP_LENGTH", 5015: "DIAMETER_INVALID_MESSAGE_LENGTH",
	5016: "DIAMETER_INVALID_AVP_BIT_COMBO", 5017: "DIAMETER_NO_COMMON_SECURITY",
	5030: "DIAMETER_USER_UNKNOWN", 5031: "DIAMETER_RATING_FAILED",
}

// vendor3GPP is 3GPP's Vendor-Id.
const vendor3GPP = 10415

// experimentalNames are 3GPP's Experimental-Result-Codes (TS 29.272,
// TS 29.229), under Vendor-Id 10415.
var experimentalNames = map[uint32]string{
	2001: "DIAMETER_FIRST_REGISTRATION", 2002: "DIAMETER_SUBSEQUENT_REGISTRATION",
	2003: "DIAMETER_UNREGISTERED_SERVICE", 2004: "DIAMETER_SUCCESS_SERVER_NAME_NOT_STORED",
	4181: "DIAMETER_AUTHENTICATION_DATA_UNAVAILABLE", 4182: "DIAMETER_ERROR_CAMEL_SUBSCRIPTION_PRESENT",
	5001: "DIAMETER_ERROR_USER_UNKNOWN", 5002: "DIAMETER_ERROR_IDENTITIES_DONT_MATCH",
	5003: "DIAMETER_ERROR_IDENTITY_NOT_REGISTERED", 5004: "DIAMETER_ERROR_ROAMING_NOT_ALLOWED",
	5420: "DIAMETER_ERROR_UNKNOWN_EPS_SUBSCRIPTION", 5421: "DIAMETER_ERROR_RAT_NOT_ALLOWED",
	5422: "DIAMETER_ERROR_EQUIPMENT_UNKNOWN", 5423: "DIAMETER_ERROR_UNKNOWN_SERVING_NODE",
}

// resultName names a Result-Code; an unknown one is its number.
func resultName(code uint32) string {
	if n, ok := resultNames[code]; ok {
		return n
	}
	return strconv.FormatUint(uint64(code), 10)
}

// experimentalName names an Experimental-Result-Code of a vendor; an
// unknown one is its number.
func experimentalName(vendor, code uint32) string {
	if vendor == vendor3GPP {
		if n, ok := experimentalNames[code]; ok {
			return n
		}
	}
	return strconv.FormatUint(uint64(code), 10)
}

// codeOfName maps every status name back to its code, for Outcome.
var codeOfName = func() map[string]uint32 {
	m := map[string]uint32{}
	for c, n := range resultNames {
		m[n] = c
	}
	for c, n := range experimentalNames {
		m[n] = c
	}
	return m
}()

// AVP data formats (RFC 6733 section 4.2, 4.3).
type avpType uint8

const (
	tOctets avpType = iota
	tText           // UTF8String, DiameterIdentity, DiameterURI
	tU32
	tI32
	tU64
	tEnum
	tAddress
	tTime
	tGrouped
	// tSecret: key material and passwords, never shown.
	tSecret
)

type avpDef struct {
	name string
	typ  avpType
}

// avpKey is an AVP's dictionary key: its vendor and code.
func avpKey(vendor, code uint32) uint64 { return uint64(vendor)<<32 | uint64(code) }

// avps is the dictionary: RFC 6733's base AVPs, RFC 4006's Credit-Control
// AVPs, the NASREQ AVPs borrowed from RADIUS that requests commonly carry,
// and 3GPP S6a's main ones. Other applications' AVPs are shown by code and
// value.
var avps = map[uint64]avpDef{
	1: {"User-Name", tText}, 2: {"User-Password", tSecret}, 4: {"NAS-IP-Address", tOctets}, 5: {"NAS-Port", tU32},
	6: {"Service-Type", tEnum}, 8: {"Framed-IP-Address", tOctets}, 25: {"Class", tOctets}, 27: {"Session-Timeout", tU32},
	30: {"Called-Station-Id", tText}, 31: {"Calling-Station-Id", tText}, 32: {"NAS-Identifier", tText},
	33: {"Proxy-State", tOctets}, 44: {"Accounting-Session-Id", tOctets}, 50: {"Acct-Multi-Session-Id", tText},
	55: {"Event-Timestamp", tTime}, 60: {"CHAP-Challenge", tSecret}, 85: {"Acct-Interim-Interval", tU32},
	257: {"Host-IP-Address", tAddress}, 258: {"Auth-Application-Id", tU32}, 259: {"Acct-Application-Id", tU32},
	260: {"Vendor-Specific-Application-Id", tGrouped}, 261: {"Redirect-Host-Usage", tEnum},
	262: {"Redirect-Max-Cache-Time", tU32}, 263: {"Session-Id", tText}, 264: {"Origin-Host", tText},
	265: {"Supported-Vendor-Id", tU32}, 266: {"Vendor-Id", tU32}, 267: {"Firmware-Revision", tU32},
	268: {"Result-Code", tU32}, 269: {"Product-Name", tText}, 270: {"Session-Binding", tU32},
	271: {"Session-Server-Failover", tEnum}, 272: {"Multi-Round-Time-Out", tU32}, 273: {"Disconnect-Cause", tEnum},
	274: {"Auth-Request-Type", tEnum}, 276: {"Auth-Grace-Period", tU32}, 277: {"Auth-Session-State", tEnum},
	278: {"Origin-State-Id", tU32}, 279: {"Failed-AVP", tGrouped}, 280: {"Proxy-Host", tText},
	281: {"Error-Message", tText}, 282: {"Route-Record", tText}, 283: {"Destination-Realm", tText},
	284: {"Proxy-Info", tGrouped}, 285: {"Re-Auth-Request-Type", tEnum}, 287: {"Accounting-Sub-Session-Id", tU64},
	291: {"Authorization-Lifetime", tU32}, 292: {"Redirect-Host", tText}, 293: {"Destination-Host", tText},
	294: {"Error-Reporting-Host", tText}, 295: {"Termination-Cause", tEnum}, 296: {"Origin-Realm", tText},
	297: {"Experimental-Result", tGrouped}, 298: {"Experimental-Result-Code", tU32}, 299: {"Inband-Security-Id", tU32},
	480: {"Accounting-Record-Type", tEnum}, 483: {"Accounting-Realtime-Required", tEnum},
	485: {"Accounting-Record-Number", tU32},
	// RFC 4006.
	411: {"CC-Correlation-Id", tOctets}, 412: {"CC-Input-Octets", tU64}, 413: {"CC-Money", tGrouped},
	414: {"CC-Output-Octets", tU64}, 415: {"CC-Request-Number", tU32}, 416: {"CC-Request-Type", tEnum},
	417: {"CC-Service-Specific-Units", tU64}, 418: {"CC-Session-Failover", tEnum}, 419: {"CC-Sub-Session-Id", tU64},
	420: {"CC-Time", tU32}, 421: {"CC-Total-Octets", tU64}, 425: {"Currency-Code", tU32},
	427: {"Credit-Control-Failure-Handling", tEnum}, 429: {"Exponent", tI32}, 431: {"Granted-Service-Unit", tGrouped},
	432: {"Rating-Group", tU32}, 437: {"Requested-Service-Unit", tGrouped}, 439: {"Service-Identifier", tU32},
	443: {"Subscription-Id", tGrouped}, 444: {"Subscription-Id-Data", tText}, 445: {"Unit-Value", tGrouped},
	446: {"Used-Service-Unit", tGrouped}, 447: {"Value-Digits", tU64}, 448: {"Validity-Time", tU32},
	450: {"Subscription-Id-Type", tEnum}, 455: {"Multiple-Services-Indicator", tEnum},
	456: {"Multiple-Services-Credit-Control", tGrouped}, 461: {"Service-Context-Id", tText},
	// 3GPP TS 29.272 (S6a/S6d), vendor 10415.
	avpKey(vendor3GPP, 1032): {"RAT-Type", tEnum}, avpKey(vendor3GPP, 1400): {"Subscription-Data", tGrouped},
	avpKey(vendor3GPP, 1405): {"ULR-Flags", tU32}, avpKey(vendor3GPP, 1406): {"ULA-Flags", tU32},
	avpKey(vendor3GPP, 1407): {"Visited-PLMN-Id", tOctets},
	avpKey(vendor3GPP, 1408): {"Requested-EUTRAN-Authentication-Info", tGrouped},
	avpKey(vendor3GPP, 1410): {"Number-Of-Requested-Vectors", tU32},
	avpKey(vendor3GPP, 1413): {"Authentication-Info", tGrouped}, avpKey(vendor3GPP, 1414): {"E-UTRAN-Vector", tGrouped},
	avpKey(vendor3GPP, 1447): {"RAND", tSecret}, avpKey(vendor3GPP, 1448): {"XRES", tSecret},
	avpKey(vendor3GPP, 1449): {"AUTN", tSecret}, avpKey(vendor3GPP, 1450): {"KASME", tSecret},
	avpKey(vendor3GPP, 1442): {"NOR-Flags", tU32}, avpKey(vendor3GPP, 1443): {"Context-Identifier", tU32},
	avpKey(vendor3GPP, 1417): {"Cancellation-Type", tEnum},
}

// enums names the values of the Enumerated AVPs in the dictionary.
var enums = map[uint64]map[uint32]string{
	273: {0: "REBOOTING", 1: "BUSY", 2: "DO_NOT_WANT_TO_TALK_TO_YOU"},
	274: {1: "AUTHENTICATE_ONLY", 2: "AUTHORIZE_ONLY", 3: "AUTHORIZE_AUTHENTICATE"},
	277: {0: "STATE_MAINTAINED", 1: "NO_STATE_MAINTAINED"},
	285: {0: "AUTHORIZE_ONLY", 1: "AUTHORIZE_AUTHENTICATE"},
	295: {1: "DIAMETER_LOGOUT", 2: "DIAMETER_SERVICE_NOT_PROVIDED", 3: "DIAMETER_BAD_ANSWER",
		4: "DIAMETER_ADMINISTRATIVE", 5: "DIAMETER_LINK_BROKEN", 6: "DIAMETER_AUTH_EXPIRED",
		7: "DIAMETER_USER_MOVED", 8: "DIAMETER_SESSION_TIMEOUT"},
	416:                      {1: "INITIAL_REQUEST", 2: "UPDATE_REQUEST", 3: "TERMINATION_REQUEST", 4: "EVENT_REQUEST"},
	427:                      {0: "TERMINATE", 1: "CONTINUE", 2: "RETRY_AND_TERMINATE"},
	450:                      {0: "END_USER_E164", 1: "END_USER_IMSI", 2: "END_USER_SIP_URI", 3: "END_USER_NAI", 4: "END_USER_PRIVATE"},
	455:                      {0: "MULTIPLE_SERVICES_NOT_SUPPORTED", 1: "MULTIPLE_SERVICES_SUPPORTED"},
	480:                      {1: "EVENT_RECORD", 2: "START_RECORD", 3: "INTERIM_RECORD", 4: "STOP_RECORD"},
	avpKey(vendor3GPP, 1032): {1000: "UTRAN", 1001: "GERAN", 1004: "EUTRAN", 1005: "NR"},
}

// avpName names an AVP: "Session-Id", "AVP 10415:1234" when unknown.
func avpName(vendor, code uint32) string {
	if d, ok := avps[avpKey(vendor, code)]; ok {
		return d.name
	}
	if vendor != 0 {
		return "AVP " + strconv.FormatUint(uint64(vendor), 10) + ":" + strconv.FormatUint(uint64(code), 10)
	}
	return "AVP " + strconv.FormatUint(uint64(code), 10)
}
