/**
 * The native rung: tsfast's oneDNN CPU engine, compiled from `native/` at install time.
 */

/** Load the compiled addon and select its backend, or throw saying why it is unavailable. */
export async function initNative(): Promise<{ backend: string; threads: number }> {
  throw new Error("the native engine is not built in this checkout (no native/ addon yet)");
}
