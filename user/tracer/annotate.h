/* annotate: GitHub Actions annotations of findings (`--annotate github`, or automatic when
 * GITHUB_ACTIONS=true and the output is not JSON on stdout). Owns: one workflow command
 * `::error file=F,line=N,title=T::MESSAGE` per finding (hang, child_status_lost) on
 * stdout, pointing at the user's frame, and the escaping that keeps what a traced process
 * controls (file names, thread names) from forming other workflow commands. */
#ifndef PH_ANNOTATE_H
#define PH_ANNOTATE_H
#include <stdbool.h>

#include "output.h"

struct tracer;

/* Parse --annotate's value: "github" or "none". 0, or -1 when unknown. */
int annotate_parse(const char *s, bool *github);
/* Whether annotations are on by default here: GITHUB_ACTIONS=true. */
bool annotate_auto(void);

void annotate_hang(struct tracer *t, const struct rec_hang *r);
void annotate_child_lost(struct tracer *t, const struct rec_child_lost *r);
#endif
