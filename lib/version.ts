/** Version of this program, shown in `Server` headers and `--version`. */
export const VERSION = "0.1.0";
