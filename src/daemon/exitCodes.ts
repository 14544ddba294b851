/** Process exit codes of the daemon and CLI (sysexits.h where one fits). */

/** Normal stop (SIGTERM drained, or a CLI command succeeded). */
export const EXIT_OK = 0;
/** Runtime failure: a port in use, the SIP library failed, a daemon not reachable. */
export const EXIT_FAILURE = 1;
/** Bad usage of the CLI (unknown option). */
export const EXIT_USAGE = 64;
/** Bad configuration (EX_CONFIG): systemd's RestartPreventExitStatus=78 stops a restart loop. */
export const EXIT_CONFIG = 78;
