'use strict';
// createWebSocketStream(ws, options): a Duplex over a WebSocket, with ws 8's semantics.
// Messages are read as chunks (text as strings in object mode); each write is one message.
// Backpressure: a full readable side pauses the WebSocket, a read resumes it; a write
// completes when its message was written to the socket.

const { Duplex } = require('node:stream');

function createWebSocketStream(ws, options) {
  // Destroying the stream terminates the connection, unless the connection failed first.
  let terminateOnDestroy = true;
  const duplex = new Duplex({
    ...options, autoDestroy: false, emitClose: false, objectMode: false, writableObjectMode: false,
  });

  ws.on('message', (msg, isBinary) => {
    const chunk = !isBinary && duplex._readableState.objectMode ? msg.toString() : msg;
    if (!duplex.push(chunk)) ws.pause();
  });
  ws.once('error', (err) => {
    if (duplex.destroyed) return;
    terminateOnDestroy = false;
    duplex.destroy(err);
  });
  ws.once('close', () => {
    if (!duplex.destroyed) duplex.push(null);
  });

  duplex._destroy = (err, callback) => {
    const emitClose = () => process.nextTick(() => duplex.emit('close'));
    if (ws.readyState === ws.CLOSED) {
      callback(err);
      emitClose();
      return;
    }
    let called = false;
    ws.once('error', (e) => {
      called = true;
      callback(e);
    });
    ws.once('close', () => {
      if (!called) callback(err);
      emitClose();
    });
    if (terminateOnDestroy) ws.terminate();
  };

  duplex._final = (callback) => {
    if (ws.readyState === ws.CONNECTING) {
      ws.once('open', () => duplex._final(callback));
      return;
    }
    const socket = ws._socket;
    if (socket === null) return; // the handshake failed: 'error' destroys the stream
    if (socket.writableFinished) {
      callback();
      if (duplex._readableState.endEmitted) duplex.destroy();
    } else {
      socket.once('finish', () => callback());
      ws.close();
    }
  };

  duplex._read = () => {
    if (ws.isPaused) ws.resume();
  };

  duplex._write = (chunk, encoding, callback) => {
    if (ws.readyState === ws.CONNECTING) {
      ws.once('open', () => duplex._write(chunk, encoding, callback));
      return;
    }
    ws.send(chunk, callback);
  };

  duplex.on('end', () => {
    if (!duplex.destroyed && duplex._writableState.finished) duplex.destroy();
  });
  const onError = (err) => {
    duplex.removeListener('error', onError);
    duplex.destroy();
    // Re-emitted only when nobody else listens, so that it is not lost.
    if (duplex.listenerCount('error') === 0) duplex.emit('error', err);
  };
  duplex.on('error', onError);
  return duplex;
}

module.exports = { createWebSocketStream };
