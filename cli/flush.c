/* flush.c - placeholder */
#include "cli.h"
int flush_main(int argc, const char *argv[]) { (void)argc; (void)argv; return 1; }
