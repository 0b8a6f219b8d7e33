/* check.c - placeholder until the policy parser lands. */
#include "cli.h"
int generate_main(int argc, const char *argv[]) { (void)argc; (void)argv; return 1; }
