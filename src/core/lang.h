/*
 * lang.h — language detection (tr_lang_*)
 *
 * A fast function-word count decides most texts in a few microseconds; when
 * it is not decisive, libexttextcat's n-gram guesser (Debian package
 * libexttextcat) is asked, over at most TR_LANG_SAMPLE_BYTES of text.
 *
 * Thread-safe: the detector is read-only except the libexttextcat handle,
 * which is used under a lock.
 */
#ifndef TR_LANG_H
#define TR_LANG_H

#include <glib.h>
#include <stddef.h>

#define TR_LANG_SAMPLE_BYTES 1024

typedef struct tr_lang tr_lang;

/*
 * fingerprints: a libexttextcat configuration (model file and code per
 * line), model files looked up in model_dir; NULL for both means "function
 * words only".  Returns NULL with *error set when the files cannot be read.
 */
tr_lang *tr_lang_new(const char *fingerprints, const char *model_dir, GError **error);
void tr_lang_free(tr_lang **lang);

/* ISO 639-1 code ("en", "es", "de", "fr", "pt", "it", "nl") — a static
 * string — or NULL when the text is too short or too ambiguous. */
const char *tr_lang_detect(tr_lang *lang, const char *text, size_t len);

#endif
