"""Realistic remote-write workloads for tests and benchmarks: a fleet of node_exporters
scraped every 15 s, as a Prometheus sends them."""
import random
from typing import List

from chalicelib.model import Series


MODES = ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"]
DISKS = ["nvme0n1", "nvme1n1", "sda"]
NICS = ["eth0", "eth1", "lo"]
FILESYSTEMS = [("/dev/nvme0n1p1", "/", "ext4"), ("/dev/nvme1n1", "/data", "xfs"),
               ("tmpfs", "/run", "tmpfs")]
DISK_METRICS = ["node_disk_read_bytes_total", "node_disk_written_bytes_total",
                "node_disk_reads_completed_total", "node_disk_writes_completed_total",
                "node_disk_io_time_seconds_total", "node_disk_read_time_seconds_total",
                "node_disk_write_time_seconds_total", "node_disk_io_now"]
NET_METRICS = ["node_network_receive_bytes_total", "node_network_transmit_bytes_total",
               "node_network_receive_packets_total", "node_network_transmit_packets_total",
               "node_network_receive_errs_total", "node_network_transmit_errs_total",
               "node_network_receive_drop_total", "node_network_transmit_drop_total",
               "node_network_up", "node_network_mtu_bytes"]
FS_METRICS = ["node_filesystem_avail_bytes", "node_filesystem_size_bytes",
              "node_filesystem_free_bytes", "node_filesystem_files",
              "node_filesystem_files_free", "node_filesystem_readonly"]
MEMORY_METRICS = [f"node_memory_{m}_bytes" for m in (
    "MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapCached", "Active",
    "Inactive", "Active_anon", "Inactive_anon", "Active_file", "Inactive_file", "Unevictable",
    "Mlocked", "SwapTotal", "SwapFree", "Dirty", "Writeback", "AnonPages", "Mapped", "Shmem",
    "KReclaimable", "Slab", "SReclaimable", "SUnreclaim", "KernelStack", "PageTables",
    "CommitLimit", "Committed_AS", "VmallocTotal", "VmallocUsed", "HugePages_Total")]
CPU_METRICS = ["node_schedstat_running_seconds_total", "node_schedstat_waiting_seconds_total",
               "node_schedstat_timeslices_total", "node_softnet_processed_total",
               "node_softnet_dropped_total", "node_softnet_times_squeezed_total",
               "node_cpu_scaling_frequency_hertz"]
SINGLE_METRICS = [f"node_netstat_{m}" for m in (
    "Tcp_ActiveOpens", "Tcp_PassiveOpens", "Tcp_CurrEstab", "Tcp_InErrs", "Tcp_InSegs",
    "Tcp_OutSegs", "Tcp_RetransSegs", "Udp_InDatagrams", "Udp_OutDatagrams", "Udp_InErrors",
    "TcpExt_ListenDrops", "TcpExt_ListenOverflows", "TcpExt_SyncookiesSent",
    "Icmp_InMsgs", "Icmp_OutMsgs", "Ip_Forwarding")] + [f"node_sockstat_{m}" for m in (
    "sockets_used", "TCP_inuse", "TCP_alloc", "TCP_orphan", "TCP_tw", "TCP_mem",
    "UDP_inuse", "UDP_mem")] + [f"node_vmstat_{m}" for m in (
    "pgfault", "pgmajfault", "pgpgin", "pgpgout", "pswpin", "pswpout", "oom_kill")] + ["node_load1", "node_load5", "node_load15", "node_boot_time_seconds",
                  "node_context_switches_total", "node_forks_total", "node_intr_total",
                  "node_procs_running", "node_procs_blocked", "node_time_seconds",
                  "node_entropy_available_bits", "node_filefd_allocated", "node_filefd_maximum",
                  "up", "scrape_duration_seconds", "scrape_samples_scraped",
                  "scrape_samples_post_metric_relabeling", "scrape_series_added"]


def node_exporter_target(instance: str, cpus: int = 8) -> List[tuple]:
    """The series (labels dicts) one node_exporter target exposes, as Prometheus labels them."""
    base = {"job": "node", "instance": instance}
    out = []
    for cpu in range(cpus):
        for mode in MODES:
            out.append({"__name__": "node_cpu_seconds_total", **base, "cpu": str(cpu),
                        "mode": mode})
    for cpu in range(cpus):
        out += [{"__name__": "node_cpu_guest_seconds_total", **base, "cpu": str(cpu),
                 "mode": mode} for mode in ("nice", "user")]
        out += [{"__name__": metric, **base, "cpu": str(cpu)} for metric in CPU_METRICS]
    for metric in DISK_METRICS:
        out += [{"__name__": metric, **base, "device": d} for d in DISKS]
    for metric in NET_METRICS:
        out += [{"__name__": metric, **base, "device": d} for d in NICS]
    for metric in FS_METRICS:
        out += [{"__name__": metric, **base, "device": dev, "mountpoint": mp, "fstype": fs}
                for dev, mp, fs in FILESYSTEMS]
    out += [{"__name__": m, **base} for m in MEMORY_METRICS + SINGLE_METRICS]
    return out


def node_exporter_requests(requests: int, start_ms: int, samples_per_request: int = 2000,
                           seed: int = 1) -> List[List[Series]]:
    """Remote-write batches as a Prometheus sends them for a fleet of node_exporters: scrapes
    of every target every 15 s, cut into requests of ``samples_per_request`` samples in the
    order the targets were scraped."""
    rng = random.Random(seed)
    targets = [node_exporter_target(f"10.0.{i // 250}.{i % 250 + 1}:9100") for i in range(40)]
    stream = []
    scrape = 0
    while len(stream) < requests * samples_per_request:
        for target in targets:
            at = start_ms + scrape * 15_000 + rng.randrange(15_000)
            stream += [(labels, at, rng.random() * 1e6) for labels in target]
        scrape += 1
    batches = []
    for index in range(requests):
        chunk = stream[index * samples_per_request:(index + 1) * samples_per_request]
        batches.append([Series(tuple(sorted(labels.items())), [at], [value])
                        for labels, at, value in chunk])
    return batches
