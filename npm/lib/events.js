'use strict';
// The browser-style side of the WebSocket class, as ws 8 has it: `addEventListener` /
// `removeEventListener` and the event objects they pass (Event, MessageEvent, CloseEvent,
// ErrorEvent), over the EventEmitter events.

/** A listener added by an `on<type>` attribute (there is one per type at most). */
const kAttribute = Symbol('lowbit:on-attribute');
/** The handler a wrapper calls. */
const kHandler = Symbol('lowbit:handler');

class Event {
  constructor(type) {
    this._type = type;
    this._target = null;
  }

  get type() { return this._type; }
  get target() { return this._target; }
}

class MessageEvent extends Event {
  constructor(type, options = {}) {
    super(type);
    this._data = options.data === undefined ? null : options.data;
  }

  get data() { return this._data; }
}

class CloseEvent extends Event {
  constructor(type, options = {}) {
    super(type);
    this._code = options.code === undefined ? 0 : options.code;
    this._reason = options.reason === undefined ? '' : options.reason;
    this._wasClean = options.wasClean === undefined ? false : options.wasClean;
  }

  get code() { return this._code; }
  get reason() { return this._reason; }
  get wasClean() { return this._wasClean; }
}

class ErrorEvent extends Event {
  constructor(type, options = {}) {
    super(type);
    this._error = options.error === undefined ? null : options.error;
    this._message = options.message === undefined ? '' : options.message;
  }

  get error() { return this._error; }
  get message() { return this._message; }
}

for (const [cls, names] of [
  [Event, ['type', 'target']], [MessageEvent, ['data']], [CloseEvent, ['code', 'reason', 'wasClean']],
  [ErrorEvent, ['error', 'message']],
]) {
  for (const name of names) Object.defineProperty(cls.prototype, name, { enumerable: true });
}

/** Builds the event object for an EventEmitter event's arguments. */
const EVENTS = {
  open: () => new Event('open'),
  message(data, isBinary) {
    return new MessageEvent('message', { data: isBinary ? data : data.toString() });
  },
  close(code, reason) {
    return new CloseEvent('close', { code, reason: reason.toString(), wasClean: this._closeFrameReceived && this._closeFrameSent });
  },
  error: (error) => new ErrorEvent('error', { error, message: error.message }),
};

function call(handler, target, event) {
  if (typeof handler === 'object' && typeof handler.handleEvent === 'function') handler.handleEvent.call(handler, event);
  else handler.call(target, event);
}

/** `addEventListener(type, handler, { once })`: a handler is added once per type. */
function addEventListener(type, handler, options = {}) {
  const attribute = !!options[kAttribute];
  const make = EVENTS[type];
  if (!make) return;
  if (!attribute) {
    for (const l of this.listeners(type)) if (l[kHandler] === handler && !l[kAttribute]) return;
  }
  const wrapper = function (...args) {
    const event = make.apply(this, args);
    event._target = this;
    call(handler, this, event);
  };
  wrapper[kHandler] = handler;
  wrapper[kAttribute] = attribute;
  if (options.once) this.once(type, wrapper);
  else this.on(type, wrapper);
}

function removeEventListener(type, handler) {
  for (const l of this.listeners(type)) {
    if (l[kHandler] === handler && !l[kAttribute]) {
      this.removeListener(type, l);
      return;
    }
  }
}

/** Defines `onopen`, `onmessage`, `onclose`, `onerror` on `proto`, enumerable as in ws. */
function defineEventAttributes(proto) {
  for (const type of ['open', 'error', 'close', 'message']) {
    Object.defineProperty(proto, `on${type}`, {
      configurable: true,
      enumerable: true,
      get() {
        for (const l of this.listeners(type)) if (l[kAttribute]) return l[kHandler];
        return null;
      },
      set(handler) {
        for (const l of this.listeners(type)) {
          if (l[kAttribute]) {
            this.removeListener(type, l);
            break;
          }
        }
        if (typeof handler === 'function') this.addEventListener(type, handler, { [kAttribute]: true });
      },
    });
  }
}

module.exports = {
  Event, MessageEvent, CloseEvent, ErrorEvent, addEventListener, removeEventListener, defineEventAttributes,
};
