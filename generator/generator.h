/* generator.h - the ruleset model (IR) and the compiler policy -> IR.
 *
 * The IR is what fedwall wants the kernel to hold: one table with its
 * chains, rules, named counters and sets/maps with their elements.  It is
 * pure data: no I/O, no libnftnl, no YAML.  nft/ renders it as text and
 * lowers it to netlink, and reads the kernel back into it, so that two IRs
 * (desired, live) can be diffed.
 *
 * Determinism: the same policy and addresses give an identical IR: chains,
 * sets and counters in a fixed order, elements sorted (ir_elem_cmp), names
 * derived from policy names.
 *
 * Ownership: an ir_ruleset owns every string and array reachable from it.
 * ir_free(NULL) is a no-op.
 */
#ifndef FEDWALL_GENERATOR_H
#define FEDWALL_GENERATOR_H

#include "common/common.h"
#include "policy/policy.h"

enum ir_hook { IR_HOOK_NONE = 0, IR_HOOK_INPUT, IR_HOOK_FORWARD, IR_HOOK_OUTPUT };
enum ir_verdict { IR_VERDICT_NONE = 0, IR_ACCEPT, IR_DROP, IR_JUMP };
enum ir_field { IR_SADDR = 0, IR_DADDR };
enum ir_ifdir { IR_IF_NONE = 0, IR_IIF, IR_OIF };

/* The closed list of key shapes fedwall's sets and maps use.  All are
 * interval sets; the address part of an element is a prefix. */
enum ir_keytype {
	IR_KEY_ADDR4 = 0,               /* ipv4_addr */
	IR_KEY_ADDR6,                   /* ipv6_addr */
	IR_KEY_ADDR4_PROTO_PORT,        /* ipv4_addr . inet_proto . inet_service */
	IR_KEY_ADDR6_PROTO_PORT,        /* ipv6_addr . inet_proto . inet_service */
	IR_KEY_PROTO_PORT,              /* inet_proto . inet_service */
};

struct ir_elem {
	struct prefix addr;     /* unused (zero) for IR_KEY_PROTO_PORT */
	struct portrange port;  /* unused (zero) for IR_KEY_ADDR4/6 */
	uint32_t chain;         /* maps: index into ruleset->chains (jump) */
};

struct ir_set {
	char *name;
	char *comment;          /* NULL if none */
	enum ir_keytype key;
	bool is_map;            /* data type verdict: each element jumps */
	struct ir_elem *elems;  /* ir_elem_cmp order; keys never overlap */
	size_t nelems;
	/* Partner maps: when an element leaves (or the map does), the
	 * connections it admitted are cut, not only new ones refused: nft/
	 * deletes the conntrack entries whose original-direction address
	 * `revoke_field` (SADDR: inbound maps, DADDR: outbound) falls inside
	 * the element and whose protocol and destination port the port
	 * dispatch map sends to the chain that looks the map up.  Set by
	 * the generator for the port classes' maps (in4_N, in6_N, out4_N,
	 * out6_N), and by the read-back for every map an address vmap rule
	 * looks up (the same maps).  Rendered nowhere and not part of the
	 * shape: ir_diff ignores it. */
	bool revoke;
	enum ir_field revoke_field;
};

struct ir_counter {
	char *name;
	char *comment;          /* NULL if none */
	struct loc loc;         /* the policy node it counts for */
	uint64_t packets, bytes;        /* filled by a kernel read-back */
};

/* The closed set of rule forms.  Text shown for family 4 / saddr. */
enum ir_rule_kind {
	/* ct state established,related accept   (verdict ACCEPT)
	 * ct state invalid [counter name "C"] drop      (verdict DROP; target C) */
	IR_R_CT_STATE = 0,
	/* tcp flags != syn / fin,syn,rst,ack ct state new [counter name "C"] drop
	 * (= tcp flags & (fin | syn | rst | ack) != syn ct state new drop;
	 * verdict DROP; target C) */
	IR_R_NEW_NOT_SYN,
	/* iif "lo" accept | oif "lo" accept     (ifdir) */
	IR_R_LOOPBACK,
	/* [iifname|oifname "IF"] [ip saddr @set] jump TARGET */
	IR_R_JUMP,
	/* icmp type TYPE accept | icmpv6 type TYPE accept   (family, icmp_type) */
	IR_R_ICMP,
	/* ip saddr . meta l4proto . th dport @set accept */
	IR_R_LOOKUP,
	/* ip saddr vmap @set   (the key is the map's: the address alone for
	 * a port class's map, or ip saddr . meta l4proto . th dport) */
	IR_R_VMAP,
	/* meta l4proto . th dport vmap @set   (the port dispatch map) */
	IR_R_PORT_VMAP,
	/* [meta l4proto . th dport @set] limit rate R/UNIT log prefix "P" */
	IR_R_LOG,
	/* [meta l4proto . th dport @set] counter name "C" accept|drop */
	IR_R_COUNTER,
	/* [iifname|oifname "IF"] [ip saddr|daddr @set] meta l4proto P
	 * [counter name "C"] accept|drop  (l4proto P, dport 0), or
	 * ... udp dport N ...  (l4proto udp, dport N): traffic that is no
	 * connection to classify, the HA pair's VRRP and conntrackd sync */
	IR_R_PROTO,
};

struct ir_rule {
	enum ir_rule_kind kind;
	enum ir_verdict verdict;
	uint8_t family;         /* 4 or 6 where an address or ICMP is matched */
	enum ir_field field;    /* which address LOOKUP/VMAP/JUMP-with-set match */
	enum ir_ifdir ifdir;    /* LOOPBACK, JUMP */
	char *ifname;           /* JUMP: interface name, or NULL */
	char *set;              /* set/map name, or NULL */
	char *target;           /* JUMP: chain name; COUNTER, CT_STATE,
				 * NEW_NOT_SYN: counter name (NULL: none) */
	uint8_t icmp_type;      /* ICMP */
	uint8_t l4proto;        /* PROTO: IP protocol */
	uint16_t dport;         /* PROTO: udp destination port, or 0: any */
	unsigned rate;          /* LOG */
	enum log_unit unit;     /* LOG */
	char *log_prefix;       /* LOG */
	char *comment;          /* NULL if none; shown in text, kept in kernel */
	uint64_t handle;        /* kernel handle from a read-back, else 0; not
				 * rendered, not compared */
};

struct ir_chain {
	char *name;
	char *comment;          /* NULL if none */
	struct loc loc;         /* policy node it serves (partner chains) */
	enum ir_hook hook;      /* IR_HOOK_NONE: a regular chain */
	int priority;           /* base chains: 0 = filter */
	enum ir_verdict policy; /* base chains: IR_ACCEPT or IR_DROP */
	struct ir_rule *rules;
	size_t nrules;
};

/* Table flags, numbered as nf_tables does (NFT_TABLE_F_*). */
enum { IR_TABLE_F_DORMANT = 1, IR_TABLE_F_OWNER = 2 };

struct ir_ruleset {
	char *table;            /* family is always inet */
	char *comment;          /* NULL if none */
	/* IR_TABLE_F_*: what the kernel reports; the generator sets none
	 * (fedwall writes 0).  Any flag is a structural difference: a
	 * dormant table filters nothing. */
	uint32_t flags;
	struct ir_chain *chains;        /* base chains first, then regular */
	size_t nchains;
	struct ir_set *sets;
	size_t nsets;
	struct ir_counter *counters;
	size_t ncounters;
};

/* Addresses of one partner, beyond its inline ones: from list files, DNS,
 * the state directory.  Parallel to policy->partners. */
struct gen_addrs {
	const struct prefix *v;
	size_t n;
	const struct loc *locs; /* parallel to v (where each was read), or NULL */
	/* Parallel to v, or NULL (all 0): the SRV kinds (policy.h: SRV_SIP,
	 * ...) an address was learnt from.  Kinds in partner_srv_scoped()
	 * admit it on the ports of the partner's services of those kinds
	 * only; 0 (and any other kind) on all its services. */
	const uint8_t *scope;
	/* Parallel to v, or NULL (all 0): 0, the address is admitted on the
	 * ports its scope gives; k in 1..npgroups, on those of them in
	 * pgroups[k - 1] too (a provider feed publishes it for those), and
	 * nowhere when none is (a warning says so).  The partner competes
	 * in its port classes as one owner more per distinct set of ports
	 * that leaves. */
	const uint32_t *pgrp;
	const struct portset *pgroups;
	size_t npgroups;
};

/* Compiles a validated policy.  `extra` may be NULL (inline addresses
 * only).  A partner with SRV kinds scoped to part of its services
 * (partner_srv_scoped) competes in its port classes as one owner per
 * kind (those services' ports, that kind's addresses) besides the one
 * with all its ports and its other addresses: so its port classes
 * follow the policy alone (its kinds' ports split them), and a class
 * holds its common addresses plus those of the kinds with a port in it.  Overlaps between partners are resolved deterministically and
 * reported as warnings.  Returns NULL only after reporting an error. */
struct ir_ruleset *generate(const struct policy *p, const struct gen_addrs *extra,
			    struct diag *d);

void ir_free(struct ir_ruleset *rs);

/* A deep copy of `rs`, the caller's to ir_free().  Its locs borrow their
 * file names from `rs`'s (valid while those are). */
struct ir_ruleset *ir_dup(const struct ir_ruleset *rs);

int ir_elem_cmp(const struct ir_elem *x, const struct ir_elem *y);

/* The element of `s` that holds the key (address of `family`, and/or
 * protocol and port, as the set's key has them), or NULL.  `s` must be
 * in ir_elem_cmp order (as generate() and the read-back make it). */
const struct ir_elem *ir_set_lookup(const struct ir_set *s, uint8_t family,
				    const uint8_t *addr, uint8_t proto, uint16_t port);

/* Whether `rs` admits a new connection to a partner: a port dispatch
 * rule (IR_R_PORT_VMAP; it has no field) sends (proto, port) to a port
 * class chain whose address map (IR_R_VMAP on field `f`, `family`) holds
 * the address: SADDR for inbound, DADDR for outbound; or an IR_R_VMAP on
 * an address . proto . port map holds the key directly.  On
 * success *set and *elem (may be NULL) tell which element admits it. */
bool ir_admits(const struct ir_ruleset *rs, enum ir_field f, uint8_t family,
	       const uint8_t *addr, uint8_t proto, uint16_t port,
	       const struct ir_set **set, const struct ir_elem **elem);

/* The same for many connections (revocation: every conntrack entry):
 * the rules it starts from (port dispatch and address vmaps), found once.
 * `rs` must outlive them; ir_gates_free(zeroed) is a no-op. */
struct ir_gates {
	const struct ir_rule **v;
	size_t n;
};
void ir_gates_find(const struct ir_ruleset *rs, struct ir_gates *out);
void ir_gates_free(struct ir_gates *g);
bool ir_admits_via(const struct ir_ruleset *rs, const struct ir_gates *g, enum ir_field f,
		   uint8_t family, const uint8_t *addr, uint8_t proto, uint16_t port,
		   const struct ir_set **set, const struct ir_elem **elem);
const struct ir_set *ir_find_set(const struct ir_ruleset *rs, const char *name);
const struct ir_chain *ir_find_chain(const struct ir_ruleset *rs, const char *name);
/* The partner whose chain `chain` is ("in_msn", "out_msn" -> "msn", the
 * names generate() gives them), or NULL.  Borrows from `chain`. */
const char *ir_chain_partner(const char *chain);

/* ---- what a ruleset does with one new connection (the sweep) ---------- */

/* The first packet of a TCP or UDP connection, as a hook sees it. */
struct ir_conn {
	enum ir_hook hook;      /* INPUT, OUTPUT: this host's own; FORWARD: routed */
	/* The interface it came in by (input) or leaves by (output, forward);
	 * NULL: one that every rule naming an interface matches, never "lo". */
	const char *ifname;
	uint8_t family;         /* 4 or 6 */
	uint8_t proto;          /* PROTO_TCP or PROTO_UDP */
	const uint8_t *saddr, *daddr;   /* 4 or 16 bytes */
	uint16_t dport;
};

/* `rs` with every rule's set and jump target found once, for many
 * ir_admits_conn() calls.  `rs` must outlive it; ir_eval_free(zeroed) is
 * a no-op. */
struct ir_eval {
	const struct ir_ruleset *rs;
	const struct ir_set **set;      /* per rule, chain after chain */
	uint32_t *target;               /* per rule: JUMP target chain or UINT32_MAX */
	size_t *first;                  /* per chain: index of its first rule */
};
void ir_eval_init(const struct ir_ruleset *rs, struct ir_eval *out);
void ir_eval_free(struct ir_eval *ev);

/* Whether `rs` accepts `c` as a new connection (a TCP SYN): every base
 * chain of c->hook is walked as the kernel would, through jumps and
 * verdict maps; a hook without a base chain admits.  Rules on conntrack
 * state, ICMP and logging never decide a new TCP/UDP connection.  So
 * management, partners, outbound allowances and "not a federation port"
 * all admit by the rules that say so, wherever they stand. */
bool ir_admits_conn(const struct ir_eval *ev, const struct ir_conn *c);

/* ---- diff ------------------------------------------------------------ */

/* Element changes of one set.  Pointers borrow from the two rulesets
 * given to ir_diff, which must outlive the diff. */
struct ir_set_delta {
	const struct ir_set *set;       /* in the new ruleset */
	const struct ir_elem **add;     /* elements of `set` to add */
	size_t nadd;
	const struct ir_elem **del;     /* elements of the old set to delete */
	size_t ndel;
};

struct ir_diff {
	bool structural;        /* anything but set elements differs */
	char *why;              /* first structural difference, for plan */
	struct ir_set_delta *sets;      /* only sets with changes */
	size_t nsets;
};

/* Compares live (may be NULL: no table) with desired. */
void ir_diff(const struct ir_ruleset *live, const struct ir_ruleset *want,
	     struct ir_diff *out);
bool ir_diff_empty(const struct ir_diff *d);
void ir_diff_free(struct ir_diff *d);

#endif
