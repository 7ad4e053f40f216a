'use strict';
// ws's error codes and messages for what core reports. Core decides what is wrong and which
// close code it costs; this file only names it the way ws does, so that programs that branch
// on `err.code` (or match ws's messages) keep working.

/** ws's status-code symbol key (it reads `err[Symbol.for('status-code')]`-like data). */
const kStatusCode = Symbol.for('status-code');

/**
 * Core error kind → [Error class, message, ws code, prefixed]. `detail` is core's message,
 * from which the few numbers ws puts in its messages are taken.
 */
const FRAME_ERRORS = {
  MessageTooBig: () => [RangeError, 'Max payload size exceeded', 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', false],
  ProtocolReservedBits: (detail) => (/0x[0-9a-f]*[4-7][0-9a-f]\b/i.test(detail)
    ? [RangeError, 'RSV1 must be clear', 'WS_ERR_UNEXPECTED_RSV_1', true]
    : [RangeError, 'RSV2 and RSV3 must be clear', 'WS_ERR_UNEXPECTED_RSV_2_3', true]),
  UnexpectedContinuation: () => [RangeError, 'invalid opcode 0', 'WS_ERR_INVALID_OPCODE', true],
  ExpectedContinuation: () => [RangeError, 'invalid opcode: a new message inside a fragmented one', 'WS_ERR_INVALID_OPCODE', true],
  InvalidOpCode: (detail) => [RangeError, `invalid opcode ${number(detail)}`, 'WS_ERR_INVALID_OPCODE', true],
  ControlFramePayloadTooLarge: (detail) => [RangeError, `invalid payload length ${number(detail)}`, 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', true],
  FragmentedControlFrame: () => [RangeError, 'FIN must be set', 'WS_ERR_EXPECTED_FIN', true],
  UnmaskedFrame: () => [RangeError, 'MASK must be set', 'WS_ERR_EXPECTED_MASK', true],
  MaskedFrame: () => [RangeError, 'MASK must be clear', 'WS_ERR_UNEXPECTED_MASK', true],
  InvalidPayloadLength: () => [RangeError, 'Unsupported WebSocket frame: payload length is not minimally encoded or > 2^63 - 1', 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH', false],
  InvalidUtf8: () => [Error, 'invalid UTF-8 sequence', 'WS_ERR_INVALID_UTF8', true],
  // ws reports zlib's own code here.
  InvalidCompressedData: () => [Error, 'invalid compressed data', 'Z_DATA_ERROR', false],
  InvalidCloseCode: (detail) => [RangeError, `invalid status code ${number(detail)}`, 'WS_ERR_INVALID_CLOSE_CODE', true],
};

function number(detail) {
  const m = /(0x[0-9a-f]+|\d+)/i.exec(detail);
  return m ? Number(m[1]) : '';
}

/**
 * The error a read failure is reported with: ws's class, message and `code` for core's
 * `kind`; `closeCode` is the code core closed with (kept under ws's status-code key).
 */
function frameError(kind, detail, closeCode) {
  let make = FRAME_ERRORS[kind];
  if (kind === 'InvalidClosePayload') {
    // A one-byte body, or a reason that is not UTF-8 (1007).
    make = closeCode === 1007 ? FRAME_ERRORS.InvalidUtf8 : () => [RangeError, 'invalid payload length 1', 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', true];
  }
  const [Ctor, message, code, prefixed] = make ? make(detail) : [Error, detail, 'WS_ERR_PROTOCOL', false];
  const err = new Ctor(prefixed ? `Invalid WebSocket frame: ${message}` : message);
  err.code = code;
  if (code === 'Z_DATA_ERROR') err.errno = -3; // zlib's Z_DATA_ERROR, as ws's error carries
  /** The core error kind, e.g. 'UnmaskedFrame'. */
  err.kind = kind;
  err[kStatusCode] = closeCode;
  return err;
}

/** ws's message for a client handshake that core refused (`r`: the handshake result). */
function clientHandshakeMessage(r, offeredExtensions, offeredProtocols) {
  switch (r.kind) {
    case 'MissingUpgrade': return 'Invalid Upgrade header';
    case 'AcceptMismatch': return 'Invalid Sec-WebSocket-Accept header';
    case 'UnofferedProtocol':
      return offeredProtocols ? 'Server sent an invalid subprotocol' : 'Server sent a subprotocol but none was requested';
    case 'UnofferedExtension':
      return offeredExtensions
        ? 'Server indicated an extension that was not requested'
        : 'Server sent a Sec-WebSocket-Extensions header but no extension was requested';
    case 'Negotiation': return 'Invalid Sec-WebSocket-Extensions header';
    case 'InvalidHeaderValue':
      if (/Extensions/.test(r.error)) return 'Invalid Sec-WebSocket-Extensions header';
      return `Invalid handshake response: ${r.error}`;
    default: return `Invalid handshake response: ${r.error}`;
  }
}

/** ws's message for a server-side refusal, by core's handshake error kind. */
function serverHandshakeMessage(r) {
  switch (r.kind) {
    case 'MethodNotGet': return 'Invalid HTTP method';
    case 'MissingUpgrade': return 'Invalid Upgrade header';
    case 'MissingKey': case 'InvalidKey': return 'Missing or invalid Sec-WebSocket-Key header';
    case 'UnsupportedVersion': return 'Missing or invalid Sec-WebSocket-Version header';
    case 'Negotiation': return 'Invalid or unacceptable Sec-WebSocket-Extensions header';
    case 'InvalidHeaderValue':
    case 'DuplicateHeader':
      if (/Protocol/.test(r.error)) return 'Invalid Sec-WebSocket-Protocol header';
      if (/Extensions/.test(r.error)) return 'Invalid or unacceptable Sec-WebSocket-Extensions header';
      return r.error;
    default: return r.error || 'Invalid upgrade request';
  }
}

module.exports = { frameError, clientHandshakeMessage, serverHandshakeMessage, kStatusCode };
