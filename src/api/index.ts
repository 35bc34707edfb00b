// The REST API's wire types, once (see common.ts): every request and response
// body of /v1 and the operations routes.
export * from './common.ts';
export * from './versions.ts';
export * from './admin.ts';
export * from './jobs.ts';
