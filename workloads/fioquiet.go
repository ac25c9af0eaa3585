package workloads

import "errors"

// quietOptions are fio options that change no I/O the target sees: reporting, logging, CPU
// placement, submission batching, file housekeeping. They are accepted with a note each.
var quietOptions = func() []option {
	var out []option
	add := func(note string, flag bool, names ...string) {
		for _, n := range names {
			out = append(out, option{names: []string{n}, flag: flag, set: func(s *scope, v string) error {
				if v == "" {
					return errors.New("empty value")
				}
				s.note("%s=%s: %s", n, v, note)
				return nil
			}})
		}
	}
	const (
		report = "reporting only; vmstorbench measures latency and bandwidth and reports them its own way"
		logs   = "vmstorbench writes no fio log files; its results keep their own time series"
		cpu    = "CPU and memory placement is left to the Go runtime (place the whole process with taskset or numactl)"
		batch  = "submission batching is not emulated; vmstorbench keeps up to iodepth I/Os in flight"
		data   = "vmstorbench fills write buffers its own way (buffer_pattern, buffer_compress_percentage and dedupe_percentage shape them)"
		files  = "the backend creates, lays out and keeps its files its own way"
		verify = "vmstorbench verifies after the writes and reports every mismatch in the results"
		rnd    = "vmstorbench uses its own random generator, seeded by randseed"
		thread = "jobs run as goroutines"
	)
	add(report, true, "gtod_reduce", "disable_lat", "disable_clat", "disable_slat", "disable_bw_measurement", "disable_bw",
		"clat_percentiles", "lat_percentiles", "slat_percentiles", "unified_rw_reporting", "block_error_percentiles", "stats", "disk_util")
	add(report, false, "percentile_list", "significant_figures", "clocksource", "gtod_cpu", "bwavgtime", "iopsavgtime", "unit_base")
	add(logs, false, "write_bw_log", "write_lat_log", "write_iops_log", "write_hist_log", "write_iolog", "log_avg_msec", "log_hist_msec",
		"log_hist_coarseness", "log_entries", "log_max_value", "log_offset", "log_compression", "log_compression_cpus",
		"log_store_compressed", "log_unix_epoch", "log_alternate_epoch", "log_alternate_epoch_clock_id", "per_job_logs", "log_prio")
	add(cpu, false, "cpus_allowed", "cpus_allowed_policy", "cpumask", "numa_cpu_nodes", "numa_mem_policy", "nice", "mem", "iomem",
		"mem_align", "iomem_align", "verify_async_cpus")
	add(cpu, true, "lockmem")
	add(thread, true, "thread", "threads")
	add("vmstorbench does not end a job for missing it; the results show what was reached", false,
		"ratemin", "rate_min", "rate_iops_min", "ratecycle", "rate_cycle", "max_latency")
	add(batch, false, "iodepth_batch", "iodepth_batch_submit", "iodepth_batch_complete", "iodepth_batch_complete_min",
		"iodepth_batch_complete_max", "iodepth_low", "io_submit_mode")
	add(data, true, "refill_buffers", "scramble_buffers")
	add(files, true, "create_serialize", "create_fsync", "create_on_open", "allow_file_create", "allow_mounted_write",
		"unlink", "unlink_each_loop")
	add(files, false, "fallocate")
	add(verify, true, "verify_fatal", "verify_dump", "verify_state_save")
	add(verify, false, "verify_async")
	add(rnd, false, "random_generator")
	add(rnd, true, "allrandrepeat", "softrandommap")
	add("errors are reported in the results", true, "error_dump")
	return out
}()

// refusedOptions are fio options that change the I/O in ways vmstorbench does not do, with
// the reason given when a job uses one.
var refusedOptions = func() map[string]string {
	m := map[string]string{}
	add := func(why string, names ...string) {
		for _, n := range names {
			m[n] = why
		}
	}
	add("zoned block devices (zonemode) are not supported", "zonemode", "zonerange", "zonesize", "zonecapacity", "zoneskip",
		"read_beyond_wp", "max_open_zones", "job_max_open_zones", "ignore_zone_limits", "zone_reset_threshold", "zone_reset_frequency")
	add("trim is not supported", "trim_percentage", "trim_verify_zero", "trim_backlog", "trim_backlog_batch")
	add("waiting for a named job is not supported; order jobs with stonewall", "wait_for")
	add("flow control between jobs is not supported", "flow", "flow_id", "flow_sleep", "flow_watermark")
	add("ending the other jobs when one ends is not supported", "exitall", "exit_what", "exitall_on_error")
	add("vmstorbench ends a job at its first I/O error", "continue_on_error", "ignore_error")
	add("steady-state detection (ending a job early) is not supported", "steadystate", "ss", "steadystate_duration", "ss_dur",
		"steadystate_ramp_time", "ss_ramp")
	add("searching for the queue depth that meets a latency target is not supported", "latency_target", "latency_window",
		"latency_percentile", "latency_run")
	add("per-clone offsets are not supported: each numjobs clone works on the same region", "offset_increment")
	add("aligning offset= is not supported", "offset_align")
	add("filling the device until it is full is not supported: give size", "fill_device", "fill_fs")
	add("vmstorbench does not switch the host's I/O scheduler: set it before the run", "ioscheduler")
	add("I/O priorities are not set", "prio", "prioclass")
	add("replaying or recording I/O logs is not supported", "read_iolog", "read_iolog_chunked", "merge_blktrace_file",
		"merge_blktrace_scalars", "merge_blktrace_iters", "replay_no_stall", "replay_time_scale", "replay_redirect",
		"replay_align", "replay_scale", "replay_skip")
	add("vmstorbench verifies after the writes, not during them", "verify_backlog", "verify_backlog_batch")
	add("not supported: vmstorbench's verify header is at the start of each block", "verify_offset")
	add("not supported: vmstorbench verifies the blocks the same run wrote", "verify_only", "verify_state_load", "experimental_verify")
	add("reading the files into the cache before the job is not supported", "pre_read")
	add("creating files without I/O is not supported", "create_only")
	add("mixing random and sequential offsets is not supported", "percentage_random")
	add("unaligned random block sizes are not supported", "bs_unaligned", "blocksize_unaligned")
	add("choosing among several files is not supported", "file_service_type", "openfiles")
	add("running commands is not supported", "exec_prerun", "exec_postrun")
	add("switching user or cgroup is not supported", "uid", "gid", "cgroup", "cgroup_weight", "cgroup_nodelete")
	add("rate_ignore_thinktime is not supported", "rate_ignore_thinktime")
	add("fio's profiles are not supported", "profile")
	return m
}()
