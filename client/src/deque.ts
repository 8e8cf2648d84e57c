/**
 * A double-ended queue on a ring of slots that doubles when full: pushing at the back and
 * taking from the front cost no allocation once it has grown to its working size. (An array
 * emptied with `length = 0` and refilled allocates its backing store again, per message.)
 */
export class Deque<T> {
  private slots: Array<T | undefined>;
  private first = 0;
  private count = 0;

  constructor(capacity = 8) {
    this.slots = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.count;
  }

  /** The item `i` places from the front. */
  at(i: number): T {
    return this.slots[(this.first + i) & (this.slots.length - 1)]!;
  }

  push(item: T): void {
    if (this.count === this.slots.length) this.grow();
    this.slots[(this.first + this.count) & (this.slots.length - 1)] = item;
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.slots[this.first];
    this.slots[this.first] = undefined;
    this.first = (this.first + 1) & (this.slots.length - 1);
    this.count--;
    return item;
  }

  private grow(): void {
    const slots = new Array<T | undefined>(this.slots.length * 2);
    for (let i = 0; i < this.count; i++) slots[i] = this.at(i);
    this.slots = slots;
    this.first = 0;
  }
}
