/* feed.c - the formats of provider feeds (`feeds:` of a partner): their
 * names and the filter keys each takes.  A new format is one row here and
 * one parser in refresh/feed.c. */
#include "policy/internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const key_names[FEED_KEYS] = {
	[FK_SERVICE_AREA] = "service_area",
	[FK_CATEGORY] = "category",
	[FK_REQUIRED] = "required",
	[FK_IDS] = "ids",
	[FK_SERVICE] = "service",
	[FK_REGION] = "region",
	[FK_NBG] = "network_border_group",
};

static const struct {
	const char *name;
	unsigned keys;          /* 1 << enum feed_key */
	bool ports;             /* publishes ports per address */
} formats[FEED_FORMATS] = {
	[FEED_PLAIN] = { "plain", 0, false },
	[FEED_M365] = { "m365", 1u << FK_SERVICE_AREA | 1u << FK_CATEGORY |
				1u << FK_REQUIRED | 1u << FK_IDS, true },
	[FEED_AWS] = { "aws", 1u << FK_SERVICE | 1u << FK_REGION | 1u << FK_NBG, false },
};

const char *feed_format_name(enum feed_format f)
{
	return (unsigned)f < FEED_FORMATS ? formats[f].name : "?";
}

const char *feed_key_name(enum feed_key k)
{
	return (unsigned)k < FEED_KEYS ? key_names[k] : "?";
}

bool feed_format_has(enum feed_format f, enum feed_key k)
{
	return (unsigned)f < FEED_FORMATS && (unsigned)k < FEED_KEYS &&
	       (formats[f].keys & 1u << k);
}

bool feed_format_ports(enum feed_format f)
{
	return (unsigned)f < FEED_FORMATS && formats[f].ports;
}

bool partner_feed_ports(const struct partner *pt)
{
	for (size_t i = 0; i < pt->nfeeds; i++)
		if (feed_format_ports(pt->feeds[i].format))
			return true;
	return false;
}

void feed_clear(struct feed *f)
{
	free(f->url.s);
	free(f->version_url.s);
	for (size_t k = 0; k < FEED_KEYS; k++) {
		for (size_t j = 0; j < f->filter[k].n; j++)
			free(f->filter[k].v[j].s);
		free(f->filter[k].v);
	}
	memset(f, 0, sizeof(*f));
}

void feeds_free(struct feed *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		feed_clear(&v[i]);
	free(v);
}
