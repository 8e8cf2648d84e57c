/**
 * A typed event emitter small enough for the browser bundle. A listener that throws does not
 * stop the others, nor the client: its error is rethrown on a later turn, where the platform
 * reports it as any uncaught error.
 */
export class Emitter<Events extends { [K in keyof Events]: (...args: any[]) => void }> {
  private listeners: { [K in keyof Events]?: Array<Events[K]> } = {};

  on<K extends keyof Events>(event: K, listener: Events[K]): this {
    (this.listeners[event] ??= []).push(listener);
    return this;
  }

  off<K extends keyof Events>(event: K, listener: Events[K]): this {
    const list = this.listeners[event];
    if (list) this.listeners[event] = list.filter((l) => l !== listener);
    return this;
  }

  once<K extends keyof Events>(event: K, listener: Events[K]): this {
    const wrapped = ((...args: Parameters<Events[K]>) => {
      this.off(event, wrapped);
      listener(...args);
    }) as Events[K];
    return this.on(event, wrapped);
  }

  protected emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    const list = this.listeners[event];
    if (!list) return;
    for (const listener of list) {
      try {
        listener(...args);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}
