// Exit codes and the error a command raises for bad input.

export const EXIT_OK = 0;
export const EXIT_FAIL = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;
export const EXIT_INTERNAL = 70;

/** Bad input: printed as is (already FILE:LINE:COL where it concerns a file), exit 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly details: { file: string; line: number; col: number; message: string }[] = [],
  ) {
    super(message);
  }
}
