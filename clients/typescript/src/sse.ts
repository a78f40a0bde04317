// A Server-Sent Events parser (the WHATWG event-stream format) over text
// chunks, for fetch's ReadableStream: EventSource cannot send Authorization
// or choose its Last-Event-ID, so the client reads SSE itself.

export interface SSEEvent {
  /** "message" unless the event named another type. */
  event: string;
  data: string;
  /** The event's id field, if it had one. */
  id: string | undefined;
}

export class SSEParser {
  private buf = "";
  private event = "";
  private data: string[] = [];
  private id: string | undefined = undefined;
  private seenField = false;

  /** Feeds decoded text; returns the events it completed. */
  push(chunk: string): SSEEvent[] {
    const out: SSEEvent[] = [];
    const text = this.buf.length > 0 ? this.buf + chunk : chunk;
    let pos = 0;
    const n = text.length;
    // The next CR at or after pos (-1: none), found once, not per line.
    let cr = text.indexOf("\r");
    while (pos < n) {
      if (cr >= 0 && cr < pos) cr = text.indexOf("\r", pos);
      let nl = text.indexOf("\n", pos);
      if (cr >= 0 && (nl < 0 || cr < nl - 1)) {
        // A lone CR ends a line; one at the very end may be the first half of CRLF.
        if (nl < 0 && cr === n - 1) break;
        nl = cr;
      }
      if (nl < 0) break;
      let end = nl;
      if (end > pos && text.charCodeAt(end - 1) === 13) end--; // CRLF
      this.line(text, pos, end, out);
      pos = nl + 1;
    }
    this.buf = pos < n ? text.slice(pos) : "";
    return out;
  }

  private line(text: string, start: number, end: number, out: SSEEvent[]): void {
    if (start === end) {
      if (this.seenField && this.data.length > 0) {
        out.push({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
      }
      this.event = "";
      this.data = [];
      this.id = undefined;
      this.seenField = false;
      return;
    }
    if (text.charCodeAt(start) === 58 /* : */) return; // a comment
    const colon = text.indexOf(":", start);
    let field: string;
    let value: string;
    if (colon < 0 || colon >= end) {
      field = text.slice(start, end);
      value = "";
    } else {
      field = text.slice(start, colon);
      let v = colon + 1;
      if (v < end && text.charCodeAt(v) === 32) v++;
      value = text.slice(v, end);
    }
    this.seenField = true;
    switch (field) {
      case "data":
        this.data.push(value);
        break;
      case "event":
        this.event = value;
        break;
      case "id":
        if (!value.includes("\0")) this.id = value;
        break;
      default:
        // retry and unknown fields: ignored.
        break;
    }
  }
}
