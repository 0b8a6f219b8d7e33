/* diag.c - one-line diagnostics in the `file:line:col: level: message` form
 * that editors and compilers share, so that vim's quickfix and grep work. */
#include "common.h"

void diag_init(struct diag *d, FILE *out)
{
	d->out = out;
	d->errors = 0;
	d->warnings = 0;
}

void diag_vreport(struct diag *d, const char *level, const struct loc *l,
		  const char *fmt, va_list ap)
{
	if (!d->out)
		return;
	if (l && l->file && l->line)
		fprintf(d->out, "%s:%u:%u: %s: ", l->file, l->line, l->col, level);
	else if (l && l->file)
		fprintf(d->out, "%s: %s: ", l->file, level);
	else
		fprintf(d->out, "fedwall: %s: ", level);
	vfprintf(d->out, fmt, ap);
	fputc('\n', d->out);
}

void diag_error(struct diag *d, const struct loc *l, const char *fmt, ...)
{
	va_list ap;

	d->errors++;
	va_start(ap, fmt);
	diag_vreport(d, "error", l, fmt, ap);
	va_end(ap);
}

void diag_warn(struct diag *d, const struct loc *l, const char *fmt, ...)
{
	va_list ap;

	d->warnings++;
	va_start(ap, fmt);
	diag_vreport(d, "warning", l, fmt, ap);
	va_end(ap);
}

void diag_note(struct diag *d, const struct loc *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vreport(d, "note", l, fmt, ap);
	va_end(ap);
}
