/* fuzz_mbox.c — libFuzzer target: any bytes as an mbox file.  Invariants:
 * the iteration ends, every message is readable and no longer than the
 * input, all of them together are no longer than the input (nothing
 * invented), and a buffer that is not an mbox is one message, whole. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	bool mbox = tr_mbox_detect(text, size);
	tr_mbox_iter it;
	tr_mbox_iter_init(&it, text, size);
	const char *msg;
	size_t len, total = 0, count = 0;
	while (tr_mbox_iter_next(&it, &msg, &len)) {
		if (len > size || (msg == NULL && len > 0))
			abort();
		volatile char sink = 0;
		for (size_t i = 0; i < len; i++)
			sink ^= msg[i];  /* every byte readable (ASan checks) */
		(void)sink;
		total += len;
		if (++count > size + 1)
			abort();  /* no endless iteration */
	}
	if (total > size)
		abort();
	if (!mbox && size > 0 && count != 1)
		abort();  /* not an mbox: one message, whole */
	tr_mbox_iter_deinit(&it);
	return 0;
}
