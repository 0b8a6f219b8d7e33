/* builtin.c - the services fedwall ships with.  Port facts from the
 * vendors' public documentation (listed in docs/fedwall-policy.5); each
 * description names its source so that a reviewer can check the figure.
 * Sorted by name; ports merged and sorted as portranges_merge() would
 * leave them (a unit test checks both). */
#include "policy/internal.h"

#define B { "<builtin>", 0, 0 }
#define TCP(lo, hi) { { PROTO_TCP, lo, hi }, B }
#define UDP(lo, hi) { { PROTO_UDP, lo, hi }, B }

static struct port_ent av_edge[] = {
	TCP(443, 443), TCP(50000, 59999), UDP(3478, 3478), UDP(50000, 59999),
};
static struct port_ent matrix[] = { TCP(8448, 8448) };
static struct port_ent sip[] = { TCP(5061, 5061) };
static struct port_ent teams[] = {
	TCP(5061, 5061), UDP(3478, 3481), UDP(49152, 53247),
};
static struct port_ent webconf[] = { TCP(443, 443) };
static struct port_ent xmpp[] = { TCP(5269, 5269) };

/* Outbound restriction (docs/fedwall-policy.5): the signalling ports
 * restrict the edge's outbound connections to partners; tcp/443 and the
 * media ranges are shared with everything else the edge talks to (CRL,
 * OCSP, updates, clients' media relays) and never do. */
#define NONE NULL, 0
#define ALL(p) p, ARRAY_SIZE(p)
static struct port_ent teams_sig[] = { TCP(5061, 5061) };

#define SVC(n, d, p, r) { (char *)(n), (char *)(d), B, p, ARRAY_SIZE(p), r, true }

static const struct service builtins[] = {
	SVC("av-edge",
	    "Lync/Skype for Business A/V Edge federation: STUN/MSTURN udp/3478 and "
	    "tcp/443, RTP tcp+udp/50000-59999 (Microsoft, Skype for Business Server "
	    "'Edge Server environmental requirements'; Lync 2010 A/V firewall guidance)",
	    av_edge, NONE),
	SVC("matrix-federation",
	    "Matrix server-server federation, default port 8448 "
	    "(Matrix specification, server discovery)",
	    matrix, ALL(matrix)),
	SVC("sip-federation",
	    "SIP/MTLS federation and public IM connectivity, IM and presence "
	    "(Microsoft, Skype for Business Server 'Edge Server environmental "
	    "requirements'; KB 897567)",
	    sip, ALL(sip)),
	SVC("teams-direct-routing",
	    "Microsoft Teams Direct Routing: SIP/TLS tcp/5061, media udp/3478-3481 "
	    "and udp/49152-53247 (Microsoft Teams Direct Routing documentation)",
	    teams, ALL(teams_sig)),
	SVC("web-conferencing",
	    "Web Conferencing Edge PSOM/TLS tcp/443 for federated users joining "
	    "conferences (Microsoft, Skype for Business Server 'Edge Server "
	    "environmental requirements')",
	    webconf, NONE),
	SVC("xmpp-s2s",
	    "XMPP server-to-server federation tcp/5269 (Skype for Business Server "
	    "XMPP proxy, 'Edge Server environmental requirements'; RFC 6120)",
	    xmpp, ALL(xmpp)),
};

const struct service *policy_builtin_services(size_t *n)
{
	*n = ARRAY_SIZE(builtins);
	return builtins;
}
