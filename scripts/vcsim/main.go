// vcsim-converge: govmomi's vCenter simulator (simulator.VPX model) for Converge's tests.
// Built from Debian packages only:
//   GO111MODULE=off GOPATH=/usr/share/gocode go build -o vcsim-converge .
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "host:port to listen on (port 0 = pick a free one)")
	plain := flag.Bool("http", false, "serve plain HTTP instead of HTTPS (self-signed)")
	dc := flag.Int("dc", 1, "datacenters")
	cluster := flag.Int("cluster", 1, "clusters per datacenter")
	hosts := flag.Int("host", 2, "hosts per cluster")
	standalone := flag.Int("standalone-host", 0, "standalone hosts per datacenter")
	vms := flag.Int("vm", 4, "VMs per resource pool (i.e. per cluster when -pool=0)")
	template := flag.String("template", "tmpl-linux", "name of a VM template to create in each DC's vm folder ('' = none)")
	autostart := flag.Bool("autostart", true, "power on model VMs")
	user := flag.String("user", "user", "login user name (enforced)")
	pass := flag.String("pass", "pass", "login password (enforced)")
	idle := flag.Duration("session-idle", 0, "expire sessions idle this long (0 = never), to test re-login")
	noSnapshots := flag.Bool("no-snapshots", false, "VMs report that they cannot take snapshots (vcsim's own default)")
	flag.Parse()

	simulator.SessionIdleTimeout = *idle

	t0 := time.Now()

	m := simulator.VPX()
	m.Datacenter = *dc
	m.Cluster = *cluster
	m.ClusterHost = *hosts
	m.Host = *standalone
	m.Machine = *vms
	m.Autostart = *autostart

	if err := m.Create(); err != nil {
		fmt.Fprintln(os.Stderr, "model create:", err)
		os.Exit(1)
	}
	defer m.Remove()

	// vcsim leaves VirtualMachine.capability at its zero value, i.e. "cannot take snapshots";
	// a real vCenter says they can. Set it on the model's VMs and on every VM made later.
	if !*noSnapshots {
		simulator.Map.AddHandler(capabilities{})
		for _, obj := range simulator.Map.All("VirtualMachine") {
			capabilities{}.PutObject(obj)
		}
	}

	if !*plain {
		m.Service.TLS = new(tls.Config) // StartTLS fills in httptest's self-signed cert
	}
	// An explicit User makes vcsim check the credentials; with simulator.DefaultLogin (nil User)
	// it accepts ANY non-empty user name and password.
	m.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *pass)}

	// Test hook: set a snapshot's createTime (vcsim always uses time.Now()).
	//   curl -k -X POST 'https://HOST/converge/snapshot-time?snapshot=snapshot-123&time=2026-01-01T00:00:00Z'
	m.Service.HandleFunc("/converge/snapshot-time", snapshotTime)

	s := m.Service.NewServer()
	defer s.Close()

	if *template != "" {
		if err := makeTemplates(s.URL, *template); err != nil {
			fmt.Fprintln(os.Stderr, "template:", err)
			os.Exit(1)
		}
	}

	u := *s.URL
	u.User = nil
	fmt.Printf("VCSIM_URL=%s\n", u.String())
	fmt.Printf("VCSIM_USER=%s\n", s.URL.User.Username())
	p, _ := s.URL.User.Password()
	fmt.Printf("VCSIM_PASSWORD=%s\n", p)
	fmt.Printf("VCSIM_READY startup=%s\n", time.Since(t0).Round(time.Millisecond))
	os.Stdout.Sync()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}

// makeTemplates creates a small powered-off VM named name in every datacenter and marks it as a template.
func makeTemplates(u *url.URL, name string) error {
	ctx := context.Background()
	c, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		return err
	}
	defer c.Logout(ctx)

	f := find.NewFinder(c.Client, false)
	dcs, err := f.DatacenterList(ctx, "*")
	if err != nil {
		return err
	}
	for _, dc := range dcs {
		f.SetDatacenter(dc)
		folders, err := dc.Folders(ctx)
		if err != nil {
			return err
		}
		pool, err := f.DefaultResourcePool(ctx)
		if err != nil {
			pools, err2 := f.ResourcePoolList(ctx, "*")
			if err2 != nil || len(pools) == 0 {
				return err
			}
			pool = pools[0]
		}
		ds, err := f.DefaultDatastore(ctx)
		if err != nil {
			return err
		}

		var devices object.VirtualDeviceList
		scsi, _ := devices.CreateSCSIController("pvscsi")
		disk := devices.CreateDisk(scsi.(types.BaseVirtualController), ds.Reference(),
			fmt.Sprintf("[%s] %s/disk1.vmdk", ds.Name(), name))
		disk.CapacityInKB = 10 * 1024 * 1024
		devices = append(devices, scsi, disk)
		// One NIC on "VM Network", as real templates have: guest customization needs it.
		network, err := f.Network(ctx, "VM Network")
		if err != nil {
			return err
		}
		backing, err := network.EthernetCardBackingInfo(ctx)
		if err != nil {
			return err
		}
		nic, err := devices.CreateEthernetCard("vmxnet3", backing)
		if err != nil {
			return err
		}
		devices = append(devices, nic)
		change, _ := devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)

		spec := types.VirtualMachineConfigSpec{
			Name:         name,
			GuestId:      string(types.VirtualMachineGuestOsIdentifierOtherGuest),
			NumCPUs:      1,
			MemoryMB:     1024,
			Files:        &types.VirtualMachineFileInfo{VmPathName: fmt.Sprintf("[%s]", ds.Name())},
			DeviceChange: change,
		}
		task, err := folders.VmFolder.CreateVM(ctx, spec, pool, nil)
		if err != nil {
			return err
		}
		info, err := task.WaitForResult(ctx, nil)
		if err != nil {
			return err
		}
		vm := object.NewVirtualMachine(c.Client, info.Result.(types.ManagedObjectReference))
		if err := vm.MarkAsTemplate(ctx); err != nil {
			return err
		}
		fmt.Printf("VCSIM_TEMPLATE=%s %s %s\n", dc.InventoryPath, name, vm.Reference().Value)
	}
	return nil
}

// capabilities is a registry handler that gives new VMs a real vCenter's capabilities.
type capabilities struct{}

func (capabilities) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "ConvergeCapabilities", Value: "capabilities"}
}

func (capabilities) PutObject(obj mo.Reference) {
	if vm, ok := obj.(*simulator.VirtualMachine); ok {
		vm.Capability.SnapshotOperationsSupported = true
		vm.Capability.MultipleSnapshotsSupported = true
		vm.Capability.RevertToSnapshotSupported = true
		vm.Capability.QuiescedSnapshotsSupported = true
	}
}

func (capabilities) UpdateObject(mo.Reference, []types.PropertyChange) {}

func (capabilities) RemoveObject(types.ManagedObjectReference) {}

func snapshotTime(w http.ResponseWriter, r *http.Request) {
	ref := types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: r.URL.Query().Get("snapshot")}
	when, err := time.Parse(time.RFC3339, r.URL.Query().Get("time"))
	if err != nil {
		http.Error(w, "time: "+err.Error(), http.StatusBadRequest)
		return
	}
	obj, ok := simulator.Map.Get(ref).(*simulator.VirtualMachineSnapshot)
	if !ok {
		http.Error(w, "no such snapshot", http.StatusNotFound)
		return
	}
	vm, ok := simulator.Map.Get(obj.Vm).(*simulator.VirtualMachine)
	if !ok {
		http.Error(w, "no such vm", http.StatusNotFound)
		return
	}
	found := false
	simulator.Map.WithLock(vm, func() {
		if vm.Snapshot != nil {
			found = setTime(vm.Snapshot.RootSnapshotList, ref, when)
		}
	})
	if !found {
		http.Error(w, "snapshot not in tree", http.StatusNotFound)
		return
	}
	fmt.Fprintln(w, "ok")
}

func setTime(list []types.VirtualMachineSnapshotTree, ref types.ManagedObjectReference, when time.Time) bool {
	for i := range list {
		if list[i].Snapshot == ref {
			list[i].CreateTime = when
			return true
		}
		if setTime(list[i].ChildSnapshotList, ref, when) {
			return true
		}
	}
	return false
}
