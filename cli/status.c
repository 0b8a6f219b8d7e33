/* status.c - placeholder */
#include "cli.h"
int status_main(int argc, const char *argv[]) { (void)argc; (void)argv; return 1; }
