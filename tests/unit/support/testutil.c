/* testutil.c — see testutil.h */
#include "../testutil.h"

#include <stdio.h>
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

tr_engine *tr_test_engine(const char *config_path)
{
	tr_diag *diag = tr_diag_new();
	tr_engine *engine = tr_engine_load(config_path, diag);
	if (engine == NULL) {
		char *text = tr_diag_join(diag);
		fprintf(stderr, "%s\n", text);
		g_free(text);
	}
	tr_diag_free(&diag);
	return engine;
}

void tr_test_rmtree(char **dirp)
{
	if (*dirp == NULL)
		return;
	char *cmd = g_strdup_printf("rm -rf '%s'", *dirp);
	int rc = system(cmd);
	(void)rc;
	g_free(cmd);
	g_free(*dirp);
	*dirp = NULL;
}
