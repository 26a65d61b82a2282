/* trace: the tracer command (`pyhang-trace [OPTIONS] [-- COMMAND...]`). */
#ifndef PH_TRACE_H
#define PH_TRACE_H
int trace_main(int argc, char **argv);
#endif
