/**
 * Anything that holds resources. The server starts components in dependency order and
 * stops them in reverse; `stop()` must finish work already accepted (in-flight commits,
 * deliveries) before it resolves, and must be safe to call once after a failed `start()`.
 */
export interface Lifecycle {
  start?(): Promise<void>;
  stop?(): Promise<void>;
}

/** One page of a listing; `next` is an opaque cursor for the following page, or null at the end. */
export interface Page<T> {
  items: T[];
  next: string | null;
}
