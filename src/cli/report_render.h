/*
 * report_render.h — `triage report` output: text, JSON, HTML (tr_cli_report_*)
 *
 * Each function appends one rendering of a tr_report (store/report.h) to
 * out; the caller owns both.  Every string that comes from the data
 * (subjects, addresses, names) is made valid UTF-8 and stripped of
 * control characters; the HTML escapes it as well, so a subject such as
 * "<script>" is shown as text.  docs/report.md lists the JSON members: their
 * names are a stable contract (new ones may be added).
 */
#ifndef TR_CLI_REPORT_RENDER_H
#define TR_CLI_REPORT_RENDER_H

#include <glib.h>

#include "store/report.h"

/* A readable summary for a terminal. */
void tr_cli_report_text(const tr_report *report, GString *out);
/* One JSON object with every figure (pretty-printed, ends with a newline). */
void tr_cli_report_json(const tr_report *report, GString *out);
/* A self-contained HTML page: inline CSS and SVG, no scripts, no external assets. */
void tr_cli_report_html(const tr_report *report, GString *out);

/* "45s", "12m", "3h 05m", "2d 04h" (g_malloc'd). */
char *tr_cli_report_duration(int64_t seconds);

#endif
