/** Where the transports listen, filled in as they start; `GET /headwaiter` serves it. */
export class Endpoints {
  rest?: string;
  mqtt?: string;
  [transport: string]: string | undefined;
}
