/* testutil.c — see testutil.h */
#include "../testutil.h"

#include <stdlib.h>
#include <unistd.h>

char *tr_test_path(const char *relative)
{
	const char *top = getenv("TR_TOP");
	return g_build_filename(top != NULL ? top : ".", relative, NULL);
}

char *tr_test_corpus(const char *relative)
{
	const char *corpus = getenv("TR_CORPUS");
	char *path = corpus != NULL ? g_build_filename(corpus, relative, NULL)
	                            : g_build_filename("..", "shared", "corpus", relative, NULL);
	if (access(path, R_OK) != 0) {
		g_free(path);
		return NULL;
	}
	return path;
}

char *tr_test_read(const char *path, size_t *len_r)
{
	char *data = NULL;
	gsize len = 0;
	GError *error = NULL;
	if (!g_file_get_contents(path, &data, &len, &error))
		fail_msg("cannot read %s: %s", path, error->message);
	if (len_r != NULL)
		*len_r = len;
	return data;
}
