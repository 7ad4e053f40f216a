/// <reference types="node" />
// Types of @lowbit/websockets: the ws 8 API where it matters, plus Codec.
import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';

export type Data = Buffer | ArrayBuffer | ArrayBufferView | string | Buffer[] | Blob;

/** permessage-deflate settings with ws's names; `true` uses the defaults. */
export interface PerMessageDeflateOptions {
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  /** Client: the largest window the server may compress with (8–15). Server: the window it compresses with. */
  serverMaxWindowBits?: number;
  /** Client: the window it compresses with. Server: the window a client that offers it is asked to use. */
  clientMaxWindowBits?: number | boolean;
  /** zlib's level (0–9, default 6) and memLevel (1–9, default 8). */
  zlibDeflateOptions?: { level?: number; memLevel?: number };
  /** Without context takeover, messages shorter than this many bytes are sent uncompressed. Default 1024. */
  threshold?: number;
}

/** Options both ends take beyond ws's. */
export interface BackpressureOptions {
  /** Stop reading the socket while more than this many bytes wait to be written. Default 16 MiB. */
  readPauseMark?: number;
  /** `send()` fails with `WS_ERR_BUFFER_FULL` while bufferedAmount exceeds this. Default 64 MiB. */
  maxBufferedAmount?: number;
  /** The largest frame written; longer messages are fragmented. Default 64 KiB. */
  maxFrame?: number;
}

/** Dropping stalled peers (ours; 0 turns a rule off). Servers default to 30 000 / 120 000 / true; clients to off. */
export interface LivenessOptions {
  /** Drop the peer when output waits this many ms without a byte written. */
  writeStallTimeout?: number;
  /** Drop the peer when nothing arrives for this many ms. */
  idleTimeout?: number;
  /** At `idleTimeout`, ping first and drop only if still nothing arrives. */
  sendPingsAutomatically?: boolean;
}

export interface ClientOptions extends BackpressureOptions, LivenessOptions {
  /** Default `true`, as in ws. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** The largest message accepted (after inflation). Default 100 MiB. */
  maxPayload?: number;
  handshakeTimeout?: number;
  tls?: import('node:tls').ConnectionOptions;
}

export interface SendOptions {
  binary?: boolean;
  /** Compress when permessage-deflate is on and the message reaches the threshold. Default true. */
  compress?: boolean;
  /** `false` sends a fragment; the message ends with the next `fin: true` send. */
  fin?: boolean;
  /** Ignored: the role decides masking. */
  mask?: boolean;
}

export declare class WebSocket extends EventEmitter {
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;

  constructor(address: string | URL, options?: ClientOptions);
  constructor(address: string | URL, protocols?: string | string[], options?: ClientOptions);

  readonly readyState: 0 | 1 | 2 | 3;
  /** Bytes queued on the socket and not yet written. */
  readonly bufferedAmount: number;
  readonly protocol: string;
  /** The negotiated Sec-WebSocket-Extensions value (`''` when none). */
  readonly extensions: string;
  readonly url: string;
  readonly isPaused: boolean;
  binaryType: 'nodebuffer' | 'arraybuffer' | 'fragments' | 'blob';

  send(data: Data | number, cb?: (err?: Error) => void): void;
  send(data: Data | number, options: SendOptions, cb?: (err?: Error) => void): void;
  ping(data?: Data | number, mask?: boolean, cb?: (err?: Error) => void): void;
  pong(data?: Data | number, mask?: boolean, cb?: (err?: Error) => void): void;
  /** Starts the close handshake; without a code, 1000 is sent. */
  close(code?: number, reason?: string | Buffer): void;
  terminate(): void;
  pause(): void;
  resume(): void;

  onopen: ((event: { type: 'open'; target: WebSocket }) => void) | null;
  onmessage: ((event: { type: 'message'; data: Buffer | ArrayBuffer | string; target: WebSocket }) => void) | null;
  onclose: ((event: { type: 'close'; code: number; reason: string; wasClean: boolean; target: WebSocket }) => void) | null;
  onerror: ((event: { type: 'error'; error: Error; message: string; target: WebSocket }) => void) | null;
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void): void;

  on(event: 'open', listener: () => void): this;
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (err: Error & { code?: string }) => void): this;
  /** The socket drained: bufferedAmount fell back (our addition to ws's events). */
  on(event: 'drain', listener: () => void): this;
  on(event: 'upgrade', listener: (res: IncomingMessage) => void): this;
  on(event: 'unexpected-response', listener: (req: import('node:http').ClientRequest, res: IncomingMessage) => void): this;
  on(event: 'redirect', listener: (url: string, req: import('node:http').ClientRequest) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'open', listener: () => void): this;
  once(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  once(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
  once(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  once(event: 'error', listener: (err: Error & { code?: string }) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

export interface ServerOptions extends BackpressureOptions, LivenessOptions {
  host?: string;
  port?: number;
  backlog?: number;
  server?: HttpServer | import('node:https').Server;
  noServer?: boolean;
  path?: string;
  /** Default 100 MiB. */
  maxPayload?: number;
  /** Default false, as in ws. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  handleProtocols?: (protocols: Set<string>, request: IncomingMessage) => string | false;
  clientTracking?: boolean;
  verifyClient?:
    | ((info: { origin: string; secure: boolean; req: IncomingMessage }) => boolean)
    | ((info: { origin: string; secure: boolean; req: IncomingMessage }, cb: (ok: boolean, code?: number, message?: string, headers?: Record<string, string>) => void) => void);
}

export declare class WebSocketServer extends EventEmitter {
  constructor(options: ServerOptions, callback?: () => void);
  readonly options: ServerOptions;
  readonly clients: Set<WebSocket>;
  address(): AddressInfo | string | null;
  shouldHandle(req: IncomingMessage): boolean;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WebSocket, req: IncomingMessage) => void): void;
  close(cb?: (err?: Error) => void): void;
  on(event: 'connection', listener: (ws: WebSocket, req: IncomingMessage) => void): this;
  on(event: 'listening' | 'close', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'wsClientError', listener: (err: Error, socket: Duplex, req: IncomingMessage) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'connection', listener: (ws: WebSocket, req: IncomingMessage) => void): this;
  once(event: 'listening' | 'close', listener: () => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

export type CodecEvent =
  | { type: 'text' | 'binary' | 'ping' | 'pong'; data: Buffer }
  | { type: 'close'; code: number; reason: string };

export interface HandshakeResult {
  done: boolean;
  used: number;
  protocol?: string;
  extensions?: string;
  path?: string;
  error?: string;
  status?: number;
}

/** The sans-IO codec: bytes in → events; calls → bytes to write. */
export declare class Codec {
  constructor(options?: { client?: boolean; maxPayload?: number; maxFrame?: number; deflate?: boolean; handshake?: boolean });
  acceptUpgrade(head: Data, options?: { protocol?: string | null; perMessageDeflate?: boolean | PerMessageDeflateOptions }): HandshakeResult;
  request(host: string, path: string, options?: { protocols?: string[]; perMessageDeflate?: boolean | PerMessageDeflateOptions }): void;
  response(head: Data): HandshakeResult;
  receive(bytes: Data): { events: CodecEvent[]; output: Buffer | null; error: { code: number | null; message: string; kind: string } | null };
  /** After a close event or an error: our close frame (held until now so replies to earlier messages go first). */
  replyClose(): Buffer | null;
  receiveEof(): number;
  send(data: Data, options?: { binary?: boolean; fin?: boolean; compress?: boolean }): Buffer | null;
  ping(data?: Data): Buffer | null;
  pong(data?: Data): Buffer | null;
  close(code?: number, reason?: string): Buffer | null;
  fail(code: number, reason?: string): Buffer | null;
  takeOutput(): Buffer | null;
  readonly closeSent: boolean;
  readonly closed: boolean;
  readonly finished: boolean;
  /** The close code core answers `bytes` with at a fresh session (`null`: accepted). */
  static closeCodeFor(bytes: Data, options?: { client?: boolean; deflate?: boolean; maxPayload?: number }): number | null;
}

/** A Duplex over `ws`, as ws's `createWebSocketStream`. */
export declare function createWebSocketStream(ws: WebSocket, options?: import('node:stream').DuplexOptions): import('node:stream').Duplex;

export { WebSocketServer as Server };
export default WebSocket;
