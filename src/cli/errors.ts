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

/** What a failed file operation's errno means, in words then its code (`no such file or directory (ENOENT)`). */
export function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code === undefined) return e instanceof Error ? e.message : String(e);
  const words = ERRNO_WORDS[code];
  return words === undefined ? code : `${words} (${code})`;
}

/** The errors a user meets naming a path; any other is shown by its code. */
const ERRNO_WORDS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EMFILE: 'too many open files',
  EEXIST: 'file exists',
};
