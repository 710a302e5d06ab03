// The span the SDK makes itself when the app registered no TracerProvider:
// valid random ids, set in the OpenTelemetry context like any other span,
// so nested tools, trace.getActiveSpan() and propagators see real ids. It
// is not exported in-process; the sidecar exports it from the socket
// frames. Attributes and status set on it after start travel in the `end`
// frame; events, links and exceptions are not kept.
import {
  SpanStatusCode,
  type Attributes,
  type Exception,
  type Link,
  type Span,
  type SpanAttributeValue,
  type SpanContext,
  type SpanStatus,
  type TimeInput,
  type TraceState,
} from '@opentelemetry/api';
import { putAttr } from './attributes.js';
import { spanIdHex, traceIdHex } from './ids.js';
import type { Attrs } from '@agentrace/protocol';

export class ToolSpan implements Span {
  /** Attributes set after start (by the tool or by traceTool), for the `end` frame. */
  readonly lateAttrs: Attrs = {};
  status: SpanStatus = { code: SpanStatusCode.UNSET };
  private ended = false;
  private readonly count = { n: 0 };
  private ctx: SpanContext | undefined;

  constructor(
    /** Trace id (16 bytes) then span id (8 bytes). */
    readonly raw: Buffer,
    readonly flags: number,
    readonly state: TraceState | undefined,
    public name: string,
    /** The parent's trace id in hex, when it is known already (saves formatting it again). */
    private readonly traceIdText?: string,
  ) {}

  spanContext(): SpanContext {
    // Hex is made on first use only: most tool spans are never asked.
    if (!this.ctx) {
      const ctx: SpanContext = {
        traceId: this.traceIdText ?? traceIdHex(this.raw),
        spanId: spanIdHex(this.raw),
        traceFlags: this.flags,
        isRemote: false,
      };
      if (this.state) ctx.traceState = this.state;
      this.ctx = ctx;
    }
    return this.ctx;
  }

  setAttribute(key: string, value: SpanAttributeValue): this {
    if (!this.ended) putAttr(this.lateAttrs, key, value, this.count);
    return this;
  }

  setAttributes(attributes: Attributes): this {
    for (const key of Object.keys(attributes)) this.setAttribute(key, attributes[key] as SpanAttributeValue);
    return this;
  }

  addEvent(_name: string, _attributesOrStartTime?: Attributes | TimeInput, _startTime?: TimeInput): this {
    return this;
  }

  addLink(_link: Link): this {
    return this;
  }

  addLinks(_links: Link[]): this {
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (this.ended) return this;
    // As in the OTel SDK: OK is final, UNSET never overrides.
    if (this.status.code === SpanStatusCode.OK || status.code === SpanStatusCode.UNSET) return this;
    this.status = status.message === undefined ? { code: status.code } : { code: status.code, message: status.message };
    return this;
  }

  updateName(name: string): this {
    if (!this.ended) this.name = name;
    return this;
  }

  end(_endTime?: TimeInput): void {
    this.ended = true;
  }

  isRecording(): boolean {
    return !this.ended;
  }

  recordException(_exception: Exception, _time?: TimeInput): void {}
}
