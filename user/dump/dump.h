/* dump: the `pyhang-trace dump PID [--json]` subcommand (owned by the CPython reader work). */
#ifndef PH_DUMP_H
#define PH_DUMP_H
/* argv[0] is "dump". Returns the process exit status. */
int dump_main(int argc, char **argv);
#endif
