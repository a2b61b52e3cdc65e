// The MSI-isolation platform rule (issue 14, the viommu-noir profiles): the
// facts the model reads in the guest (/proc/interrupts, the kernel log, the two
// allow_unsafe_interrupts parameters) and the refusals it predicts from them:
// vfio_iommu_type1_attach_group's EPERM at SET_IOMMU and iommufd_device_bind's
// EPERM at a compat group's first device open and at BIND_IOMMUFD on the cdev.
// The texts are those the viommu and viommu-noir guests showed (6.12.117).
import { expect } from 'chai';
import { IommufdModel } from '../../lib/model/iommufd.ts';
import { iommufdDomainSpec } from '../../lib/model/mock.ts';
import { ModelProcess } from '../../lib/model/process.ts';
import { Type1ContainerModel, Type1GroupModel, type GroupIommufdBinding } from '../../lib/model/type1.ts';
import { interruptRemappingFrom, iommufdMsiPlatform, type1PlatformFrom, type Type1Platform } from '../../lib/model/type1-platform.ts';
import { VfioDeviceCdevModel } from '../../lib/model/vfio/device-cdev.ts';
import * as U from '../../lib/uapi/index.ts';

const EPERM = 1;
const EDU = '0000:00:03.0';

const INTERRUPTS_IR = `           CPU0       CPU1
  0:         54          0  IR-IO-APIC   2-edge      timer
 24:          0          0  DMAR-MSI   0-edge      dmar0
 25:          0          0  IR-PCI-MSIX-0000:00:01.0   0-edge      virtio0-config
 26:       1533          0  IR-PCI-MSIX-0000:00:01.0   1-edge      virtio0-requests
NMI:          0          0   Non-maskable interrupts
`;
const INTERRUPTS_NOIR = `           CPU0       CPU1
  0:         29          0   IO-APIC   2-edge      timer
 24:          0          0  DMAR-MSI   0-edge      dmar0
 25:          0          0  PCI-MSIX-0000:00:01.0   0-edge      virtio0-config
 26:       1532          0  PCI-MSIX-0000:00:01.0   1-edge      virtio0-requests
NMI:          0          0   Non-maskable interrupts
`;
const DMESG_IR = '[    0.016000] DMAR-IR: Enabled IRQ remapping in xapic mode\n';

function platform(ir: boolean, type1Unsafe: boolean, iommufdUnsafe: boolean): Type1Platform {
  return type1PlatformFrom({
    reservedRegions: '0x00000000fee00000 0x00000000feefffff msi\n',
    intelCap: 'd2008c22260286\n',
    intelEcap: ir ? 'f00f4a\n' : 'f42\n',
    cmdline: 'console=ttyS0 intel_iommu=on',
    dmesg: ir ? DMESG_IR : '',
    interrupts: ir ? INTERRUPTS_IR : INTERRUPTS_NOIR,
    allowUnsafeInterrupts: type1Unsafe ? 'Y\n' : 'N\n',
    iommufdAllowUnsafeInterrupts: iommufdUnsafe ? 'Y\n' : 'N\n',
    dmaEntryLimit: '65535\n',
  });
}

describe('model.platform-msi', () => {
  describe('interruptRemappingFrom', () => {
    it('reads the PCI MSI chips of /proc/interrupts: IR- under interrupt remapping, plain without', () => {
      expect(interruptRemappingFrom('', INTERRUPTS_IR)).to.equal(true);
      expect(interruptRemappingFrom('', INTERRUPTS_NOIR)).to.equal(false);
    });
    it('the interrupt table wins over the kernel log (which a long run can scroll away)', () => {
      expect(interruptRemappingFrom('', INTERRUPTS_IR), 'no DMAR-IR line left in the log').to.equal(true);
      expect(interruptRemappingFrom(DMESG_IR, INTERRUPTS_NOIR)).to.equal(false);
    });
    it('falls back to the kernel log when no PCI MSI is allocated', () => {
      const noMsi = '           CPU0\n  0:  29  IR-IO-APIC   2-edge      timer\n';
      expect(interruptRemappingFrom(DMESG_IR, noMsi)).to.equal(true);
      expect(interruptRemappingFrom('', noMsi)).to.equal(false);
      expect(interruptRemappingFrom(DMESG_IR)).to.equal(true);
    });
    it('a table that mixes remapped and plain PCI MSIs is an error, not a guess', () => {
      expect(() => interruptRemappingFrom('', `${INTERRUPTS_IR} 27:  0  0  PCI-MSI-0000:00:05.0   0-edge   x\n`)).to.throw(/mixes/);
    });
    it('leaves out AMD-Vi\'s own plain MSI, by the function its chip names (6.2+) or its hwirq encodes (6.1\'s one PCI-MSI domain)', () => {
      // 6.1.192's amd guest: AMD-Vi at 00:03.0 (hwirq 49152 = pci_dev_id 0x18 << 11), the virtio devices remapped.
      const amd61 = '            CPU0       CPU1\n 24:   0   0   PCI-MSI 49152-edge      AMD-Vi\n 25:   0   0  IR-PCI-MSI 16384-edge      virtio0-config\n 26:  1101   0  IR-PCI-MSI 16385-edge      virtio0-requests\n';
      expect(interruptRemappingFrom('', amd61, ['0000:00:03.0'])).to.equal(true);
      expect(() => interruptRemappingFrom('', amd61, ['0000:00:04.0']), 'another function is the IOMMU').to.throw(/mixes/);
      const amd612 = '            CPU0\n 24:   0   PCI-MSI-0000:00:03.0    0-edge      AMD-Vi\n 25:   0  IR-PCI-MSIX-0000:00:02.0    0-edge      virtio0-config\n';
      expect(interruptRemappingFrom('', amd612, ['0000:00:03.0'])).to.equal(true);
    });
  });

  it('reads both allow_unsafe_interrupts parameters, iommufd\'s as N where the kernel has no iommufd', () => {
    const p = platform(false, true, false);
    expect([p.interruptRemapping, p.allowUnsafeInterrupts, p.iommufdAllowUnsafeInterrupts]).to.deep.equal([false, true, false]);
    const noIommufd = type1PlatformFrom({
      reservedRegions: '', intelCap: 'd2008c22260286', intelEcap: 'f42', cmdline: '', dmesg: '', interrupts: INTERRUPTS_NOIR, allowUnsafeInterrupts: 'N', dmaEntryLimit: '65535',
    });
    expect(noIommufd.iommufdAllowUnsafeInterrupts).to.equal(false);
  });

  // Every setting of the two parameters on a platform without interrupt remapping, and with it.
  const settings: [boolean, boolean, boolean][] = [
    [true, false, false],
    [false, false, false],
    [false, true, false],
    [false, false, true],
    [false, true, true],
  ];
  for (const [ir, type1Unsafe, iommufdUnsafe] of settings) {
    const name = `${ir ? 'IR' : 'no IR'}, type1 unsafe ${type1Unsafe ? 'Y' : 'N'}, iommufd unsafe ${iommufdUnsafe ? 'Y' : 'N'}`;
    it(`${name}: type1 ${ir || type1Unsafe ? 'attaches' : 'EPERM at SET_IOMMU'}, iommufd ${ir || iommufdUnsafe ? 'binds' : 'EPERM at bind'}`, () => {
      const p = platform(ir, type1Unsafe, iommufdUnsafe);
      const type1Errno = ir || type1Unsafe ? 0 : EPERM;
      const iommufdErrno = ir || iommufdUnsafe ? 0 : EPERM;

      // type1: SET_CONTAINER takes the group; SET_IOMMU attaches it (vfio_iommu_type1_attach_group).
      const type1 = new Type1ContainerModel(new ModelProcess());
      const g1 = new Type1GroupModel(3, p, [EDU]);
      expect(g1.setContainer(type1).errno).to.equal(0);
      expect(type1.setIommu(U.VFIO_TYPE1v2_IOMMU).errno).to.equal(type1Errno);

      // compat: SET_CONTAINER and SET_IOMMU succeed; the first GET_DEVICE_FD binds (iommufd_device_bind).
      const ictx = new IommufdModel(new ModelProcess());
      const g2 = new Type1GroupModel(3, p, [EDU]);
      const binding: GroupIommufdBinding = {
        bindDevice: () => ictx.attachHardwareDevice(iommufdDomainSpec(p), ictx.compatIoas()?.id ?? null, iommufdMsiPlatform(p)),
        unbindDevice: (devId) => void ictx.detachHardwareDevice(devId),
      };
      expect(g2.setContainer('iommufd', binding).errno).to.equal(0);
      expect(ictx.vfioGroupAttached().errno).to.equal(0);
      expect(ictx.compat.setIommu(U.VFIO_TYPE1v2_IOMMU).errno).to.equal(0);
      expect(g2.getDeviceFd(EDU).errno).to.equal(iommufdErrno);

      // native: BIND_IOMMUFD on the cdev.
      const native = new VfioDeviceCdevModel(iommufdDomainSpec(p), iommufdMsiPlatform(p));
      expect(native.bindIommufd(new IommufdModel(new ModelProcess())).errno).to.equal(iommufdErrno);
    });
  }
});
