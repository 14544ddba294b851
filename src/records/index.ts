/** Call records: the per-call JSON record (CDR, tools, usage, transcript) and the stereo recording. */
export * from './types';
export * from './RecordStore';
export * from './StereoWavWriter';
export { writeFileAtomic, syncDir, RECORD_FILE_MODE, RECORD_DIR_MODE } from './atomic';
export { DEFAULT_RECORD_LIMITS, type RecordLimits } from './normalize';
export { fileStem, dayDirName } from './paths';
export { PostgresRecords, type PostgresRecordsOptions } from './PostgresRecords';
export { RecordSync, type RecordSyncOptions, type RecordSyncStats } from './RecordSync';
export { matchesQuery, likePattern, type RecordQuery, type RecordPage } from './query';
