/* test_hooks.c — TEST-ONLY fault injection for `triage lmtp` and
 * `triage milter` (see cli.h and docs/mta.md, "Test-only hooks").
 *
 *   TRIAGE_TEST_FAULT=classify   every classification fails like an
 *                                internal error would: exercises on_error
 *
 * Nothing is active unless the variable is set, and a warning says so at
 * start-up.  Never set it in production.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

bool tr_cli_test_fault(const char *command, bool *fail_classify)
{
	*fail_classify = false;
	const char *fault = g_getenv("TRIAGE_TEST_FAULT");
	if (fault == NULL || *fault == '\0')
		return true;
	if (strcmp(fault, "classify") != 0) {
		fprintf(stderr, "triage %s: TRIAGE_TEST_FAULT='%s': only 'classify'\n", command, fault);
		return false;
	}
	fprintf(stderr, "triage %s: WARNING: TRIAGE_TEST_FAULT=classify: every classification fails (test only)\n",
	        command);
	*fail_classify = true;
	return true;
}
