/* plan.c - placeholder */
#include "cli.h"
int plan_main(int argc, const char *argv[]) { (void)argc; (void)argv; return 1; }
