// The names OTLP export is configured with, as the OpenTelemetry
// specification spells them (OTEL_EXPORTER_OTLP_PROTOCOL, _COMPRESSION).

/** An OTLP signal: names its variables (OTEL_EXPORTER_OTLP_<SIGNAL>_*) and its HTTP path (/v1/<signal>). */
export type OtlpSignal = 'traces' | 'metrics' | 'logs';

export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';
export const SUPPORTED_PROTOCOLS: readonly OtlpProtocol[] = ['http/protobuf', 'http/json', 'grpc'];

export type OtlpCompression = 'gzip' | 'none';
export const SUPPORTED_COMPRESSIONS: readonly OtlpCompression[] = ['gzip', 'none'];
